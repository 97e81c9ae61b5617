// The access log's JSON line for one finished request, in two halves: on the request thread the
// fields are copied into a compact record (no escaping, no formatting, no allocation once the
// buffer is warm); on the writer thread format_access_log_record() builds the line by hand (one
// buffer, no DOM) with every string through append_json_escaped, so hostile bytes in a path,
// header or user agent can never break the line or the JSON.
//
//   ByteBuffer record;
//   append_access_log_record(record, access_log_fields(ex, latency, LatencyBucket::kP95));
//   writer.write_record(&format_access_log_record, record);
//   // -> {"time":"2026-01-02T03:04:05.678Z","request_id":"...","method":"GET",...}
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "observe/byte_buffer.hpp"
#include "observe/latency_estimator.hpp"
#include "sluice/exchange.hpp"

namespace sluice::observe {

// RFC 3339, UTC, milliseconds: "2026-01-02T03:04:05.678Z".
void append_rfc3339_millis(std::string& out, std::chrono::system_clock::time_point t);
void append_rfc3339_millis(ByteBuffer& out, std::chrono::system_clock::time_point t);

// What one line says. The string views borrow from the exchange until the record is appended.
struct AccessLogFields {
  int64_t start_unix_ns = 0;
  int64_t latency_ns = 0;
  int64_t upstream_latency_ns = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int32_t status = 0;
  LatencyBucket bucket = LatencyBucket::kP50;
  bool has_trace = false;
  uint8_t trace_id[16] = {};
  uint8_t span_id[8] = {};
  std::string_view request_id, method, path, client_ip, user_agent, route, upstream, answered_by,
      detail, skipped, user, tier;
};

AccessLogFields access_log_fields(const Exchange& ex, std::chrono::nanoseconds latency,
                                  LatencyBucket bucket);

// Appends the compact record of `f` to `out` (copies of the strings, fixed-size numbers).
void append_access_log_record(ByteBuffer& out, const AccessLogFields& f);

// An AccessLogWriter::Formatter: the JSON line (ending in '\n') of a record made by
// append_access_log_record.
void format_access_log_record(std::string_view record, ByteBuffer& out);

// Both halves at once, for tests and cold paths.
std::string format_access_log_line(const Exchange& ex, std::chrono::nanoseconds latency,
                                   LatencyBucket bucket);

}  // namespace sluice::observe
