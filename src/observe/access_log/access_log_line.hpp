// The access log's JSON line for one finished request, built by hand (one buffer, no DOM) with
// every string through append_json_escaped, so hostile bytes in a path, header or user agent
// can never break the line or the JSON.
//
//   std::string line = format_access_log_line(ex, latency, "p95");
//   // {"time":"2026-01-02T03:04:05.678Z","request_id":"...","method":"GET",...}
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "sluice/exchange.hpp"

namespace sluice::observe {

// RFC 3339, UTC, milliseconds: "2026-01-02T03:04:05.678Z".
void append_rfc3339_millis(std::string& out, std::chrono::system_clock::time_point t);

std::string format_access_log_line(const Exchange& ex, std::chrono::nanoseconds latency,
                                   std::string_view latency_bucket);

}  // namespace sluice::observe
