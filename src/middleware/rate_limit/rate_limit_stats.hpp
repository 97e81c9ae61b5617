// Rate-limit stats — the one declaration of rate_limit's metric families, and the series one
// limit (or one Redis backend) counts into (docs/OBSERVABILITY.md, "Naming"):
//   sluice_rate_limit_decisions_total{route,limiter="<middleware>/<limit>",result}
//       result: allowed, denied, allowed_degraded, denied_degraded
//   sluice_rate_limit_backend_up{route,limiter="<middleware>"}                 (gauge)
//   sluice_rate_limit_backend_errors_total{route,limiter,kind=timeout|connection|script}
//   sluice_rate_limit_redis_rtt_seconds{route,limiter}                         (histogram)
// The factory builds them once per config item; the request path only increments.
//
//   auto d = rate_limit_decision_stats(metrics, spec.route, "rl/per_ip");
//   if (d.denied) d.denied->Increment();
#pragma once

#include <string>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace sluice::middleware {

// Decisions of one limit; any pointer may be null (no metrics registry).
struct RateLimitDecisionStats {
  prometheus::Counter* allowed = nullptr;
  prometheus::Counter* denied = nullptr;
  prometheus::Counter* allowed_degraded = nullptr;
  prometheus::Counter* denied_degraded = nullptr;
};

// The Redis backend of one rate_limit; any pointer may be null.
struct RateLimitBackendStats {
  prometheus::Gauge* up = nullptr;
  prometheus::Counter* errors_timeout = nullptr;
  prometheus::Counter* errors_connection = nullptr;
  prometheus::Counter* errors_script = nullptr;
  prometheus::Histogram* redis_rtt = nullptr;
};

// Register (or find again, after a reload) the families and the series of `limiter` on `route`;
// `registry` may be null (all pointers null).
RateLimitDecisionStats rate_limit_decision_stats(prometheus::Registry* registry,
                                                 const std::string& route,
                                                 const std::string& limiter);
RateLimitBackendStats rate_limit_backend_stats(prometheus::Registry* registry,
                                               const std::string& route,
                                               const std::string& limiter);

}  // namespace sluice::middleware
