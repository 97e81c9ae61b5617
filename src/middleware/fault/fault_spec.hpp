// FaultSpec — one configured fault: what it injects (delay, abort, reset, dependency outage,
// response throttle), which requests it matches, and its default switch and percentage.
//
//   FaultSpec f{.name = "slow-api", .kind = FaultKind::kDelay};
//   f.delay = {.distribution = DelaySpec::Distribution::kUniform, .min = 100ms, .max = 300ms};
//   auto d = f.delay.sample(seed, n);   // the same (seed, n) always gives the same delay
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/http.hpp"
#include "upstream/upstream_faults.hpp"

namespace sluice::middleware::fault {

enum class FaultKind {
  kDelay,                  // the request waits on a timer before it continues
  kAbort,                  // answered now with a configured status/body (or a reset connection)
  kDependencyUnavailable,  // a named upstream cluster behaves as down (through UpstreamFaults)
  kThrottle,               // the response waits body_bytes / bytes_per_second before it is sent
};
std::string_view kind_name(FaultKind kind);

struct DelaySpec {
  enum class Distribution { kFixed, kUniform, kNormal };
  Distribution distribution = Distribution::kFixed;
  std::chrono::milliseconds fixed{0};
  std::chrono::milliseconds min{0}, max{0};      // uniform range [min, max]
  std::chrono::milliseconds mean{0}, stddev{0};  // normal; clamped to [0, limit]
  std::chrono::milliseconds limit{60'000};       // no draw waits longer than this

  // The delay of the n-th matched request of a stream with `seed`.
  std::chrono::nanoseconds sample(std::uint64_t seed, std::uint64_t n) const;
};

struct AbortSpec {
  int status = 503;
  std::string body;  // empty: the JSON error body {"error":"fault_abort",...}
  std::string content_type = "text/plain";
  std::vector<std::pair<std::string, std::string>> headers;
  bool reset = false;  // close the connection with a TCP reset instead of answering
};

struct ThrottleSpec {
  std::uint64_t bytes_per_second = 0;
};

struct DependencySpec {
  std::string cluster;
  upstream::UpstreamFault fault;  // kind and status; the percentage comes from the fault's switch
};

// Which requests a fault applies to; empty fields match everything.
struct FaultMatch {
  std::string prefix;
  std::string exact;
  std::vector<std::string> methods;
  std::vector<std::pair<std::string, std::string>> headers;  // value "" means "present"
  std::vector<std::string> routes;

  bool matches(const Request& request, std::string_view route) const {
    return matches(request, request.path(), request.method(), route);
  }
  // The same with the path and method already taken out of the request (once per request,
  // not once per fault).
  bool matches(const Request& request, std::string_view path, std::string_view method,
               std::string_view route) const;
  bool empty() const {
    return prefix.empty() && exact.empty() && methods.empty() && headers.empty() && routes.empty();
  }
};

struct FaultSpec {
  std::string name;
  FaultKind kind = FaultKind::kDelay;
  FaultMatch match;
  bool enabled = true;
  double percentage = 100.0;
  DelaySpec delay;
  AbortSpec abort;
  ThrottleSpec throttle;
  DependencySpec dependency;
};

}  // namespace sluice::middleware::fault
