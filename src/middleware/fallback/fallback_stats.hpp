// Fallback stats — the one declaration of the fallback type's metric families
// (docs/OBSERVABILITY.md, "Middleware stats"):
//   sluice_fallback_total{route,fallback,result}   result: served, failed, timed_out, hedged; and
//   for
//       a hedge (fallback="<middleware>:hedge"): refreshed, over_cap
//   sluice_queue_{depth,oldest_age_seconds,bytes,dead_letters}{queue}       (gauges)
//   sluice_queue_enqueued_total{queue}, sluice_queue_replayed_total{queue,result}
//   sluice_queue_drain_duration_seconds{queue}                              (histogram)
//   sluice_queue_backend_up{queue} (gauge), sluice_queue_redis_down_total{queue,result}
// Built once per config item (a queue's once per process); the request path only increments.
//
//   auto s = fallback_stats(metrics, spec.route, "cache");
//   if (s.served) s.served->Increment();
#pragma once

#include <string>

#include "queue/redis_stream_storage.hpp"
#include "queue/store_and_forward.hpp"

namespace prometheus {
class Counter;
class Registry;
}  // namespace prometheus

namespace sluice::middleware {

// One fallback's attempts; any pointer may be null (no metrics registry).
struct FallbackStats {
  prometheus::Counter* served = nullptr;
  prometheus::Counter* failed = nullptr;
  prometheus::Counter* timed_out = nullptr;
  prometheus::Counter* hedged = nullptr;
};

// A hedge's background refreshes: done, or refused over max_background.
struct FallbackHedgeStats {
  prometheus::Counter* refreshed = nullptr;
  prometheus::Counter* over_cap = nullptr;
};

// Register (or find again, after a reload) the families and the series; `registry` may be null
// (all pointers null).
FallbackStats fallback_stats(prometheus::Registry* registry, const std::string& route,
                             const std::string& fallback);
FallbackHedgeStats fallback_hedge_stats(prometheus::Registry* registry, const std::string& route,
                                        const std::string& middleware);
queue::QueueMetrics fallback_queue_stats(prometheus::Registry* registry, const std::string& queue);
// sluice_queue_redis_down_total{queue,result=local|rejected}: writes that met Redis down.
queue::RedisQueueMetrics fallback_queue_redis_stats(prometheus::Registry* registry,
                                                    const std::string& queue);

}  // namespace sluice::middleware
