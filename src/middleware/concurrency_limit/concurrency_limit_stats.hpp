// ConcurrencyLimitStats — the one declaration of concurrency_limit's metric families, and the
// series one limiter counts into (docs/OBSERVABILITY.md, "Naming"):
//   sluice_concurrency_limit_in_flight{route,limiter}                          (gauge)
//   sluice_concurrency_limit_rejected_total{route,limiter,reason=full|queue_full|timeout}
// `limiter` is the instance name, or "group:<group>" for a shared group; a group's routes count
// into their own series (`sum by (limiter)` gives the group's in-flight). The factory builds them
// once per config item; the request path only increments through the pointers.
//
//   auto stats = concurrency_limit_stats(metrics, spec.route, spec.name);
//   if (stats.rejected_full) stats.rejected_full->Increment();
#pragma once

#include <string>

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace sluice::middleware {

// Metric series of one limiter label; any pointer may be null (no metrics registry).
struct ConcurrencyLimitStats {
  prometheus::Gauge* in_flight = nullptr;
  prometheus::Counter* rejected_full = nullptr;
  prometheus::Counter* rejected_queue_full = nullptr;
  prometheus::Counter* rejected_timeout = nullptr;
};

// Registers (or finds again, after a reload) the families and the series of `limiter` on
// `route`; `registry` may be null (all pointers null).
ConcurrencyLimitStats concurrency_limit_stats(prometheus::Registry* registry,
                                              const std::string& route, const std::string& limiter);

}  // namespace sluice::middleware
