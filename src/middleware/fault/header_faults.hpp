// HeaderFaults — faults a client asks for with request headers, as Envoy's fault filter does:
//   x-sluice-fault-delay-ms: 200            x-sluice-fault-delay-percentage: 50
//   x-sluice-fault-abort-status: 503        x-sluice-fault-abort-percentage: 10
//   x-sluice-fault-throughput-bps: 1000     (response body paced at 1000 bytes/s)
// Off unless `headers.enabled: true`; then only from `headers.allowed_clients` (if listed),
// with delays capped at `headers.max_delay_ms`. The headers are removed before the upstream.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "net/cidr.hpp"
#include "sluice/http.hpp"

namespace sluice::middleware {

struct HeaderFaultConfig {
  bool enabled = false;
  net::CidrSet allowed_clients;  // empty: any client
  std::chrono::milliseconds max_delay{10'000};
};

// What the headers of one request ask for (before the percentage draws).
struct HeaderFaultRequest {
  std::optional<std::chrono::milliseconds> delay;
  double delay_percentage = 100.0;
  std::optional<int> abort_status;
  double abort_percentage = 100.0;
  std::optional<std::uint64_t> throughput;  // bytes per second
  bool any() const { return delay || abort_status || throughput; }
};

// Reads (and strips) the fault headers; nothing when the client is not allowed. Malformed
// values are ignored, as if absent.
HeaderFaultRequest read_header_faults(const HeaderFaultConfig& config, Request& request,
                                      std::string_view client_ip);

}  // namespace sluice::middleware
