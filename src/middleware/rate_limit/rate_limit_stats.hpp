// Rate-limit stats — the one declaration of rate_limit's metric families, and the series one
// limit (or one Redis backend) counts into (docs/OBSERVABILITY.md, "Naming"):
//   sluice_rate_limit_decisions_total{route,limiter="<middleware>/<limit>",result}
//       result: allowed, denied, allowed_degraded, denied_degraded
//   sluice_rate_limit_backend_up{route,limiter="<middleware>"}                 (gauge)
//   sluice_rate_limit_backend_errors_total{route,limiter,kind=timeout|connection|script}
//   sluice_rate_limit_redis_rtt_seconds{route,limiter}                         (histogram)
// The factory builds them once per config item; the request path only increments.
//
//   auto d = rate_limit_decision_stats(spec.services, spec.route, "rl/per_ip");
//   if (d.denied) d.denied->add();
//
// The decisions are counted on every request, by every worker: they are per-worker sharded
// counters (observe::ShardedCounter, as the http_* request metrics), summed at scrape, so no
// worker writes a cache line another worker writes (docs/PERFORMANCE.md, issue 20's seventh
// pass). They are therefore served by the gateway's observe::MetricsRegistry, which collects such
// families; a plain prometheus::Registry in GatewayServices::metrics does not show them.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "observe/metrics/sharded.hpp"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
struct MetricFamily;
}  // namespace prometheus

namespace sluice {
struct GatewayServices;
}

namespace sluice::middleware {

// Decisions of one limit; any pointer may be null (no services or no metrics registry).
struct RateLimitDecisionStats {
  observe::ShardedCounter* allowed = nullptr;
  observe::ShardedCounter* denied = nullptr;
  observe::ShardedCounter* allowed_degraded = nullptr;
  observe::ShardedCounter* denied_degraded = nullptr;
};

// Every limit's decision counters in the process: one per GatewayServices (observe::shared_pool,
// so a reload finds the same series and its collect() is registered once).
class RateLimitDecisionCounters {
 public:
  // The series of `limiter` on `route`, made on first use; they live as long as this object.
  RateLimitDecisionStats series(const std::string& route, const std::string& limiter);
  // sluice_rate_limit_decisions_total, summed from the shards.
  std::vector<prometheus::MetricFamily> collect() const;

 private:
  struct Series {
    observe::ShardedCounter allowed, denied, allowed_degraded, denied_degraded;
  };
  mutable std::mutex mutex_;  // series are made by config loads while a scrape may read them
  std::map<std::pair<std::string, std::string>, Series> series_;  // by (route, limiter)
};

// The Redis backend of one rate_limit; any pointer may be null.
struct RateLimitBackendStats {
  prometheus::Gauge* up = nullptr;
  prometheus::Counter* errors_timeout = nullptr;
  prometheus::Counter* errors_connection = nullptr;
  prometheus::Counter* errors_script = nullptr;
  prometheus::Histogram* redis_rtt = nullptr;
};

// Make (or find again, after a reload) the series of `limiter` on `route`; `services` may be
// null, or have no metrics registry (all pointers null).
RateLimitDecisionStats rate_limit_decision_stats(GatewayServices* services,
                                                 const std::string& route,
                                                 const std::string& limiter);
// `registry` may be null (all pointers null).
RateLimitBackendStats rate_limit_backend_stats(prometheus::Registry* registry,
                                               const std::string& route,
                                               const std::string& limiter);

}  // namespace sluice::middleware
