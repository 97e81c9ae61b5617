// Adaptive-concurrency stats — the one declaration of adaptive_concurrency's metric families
// (docs/OBSERVABILITY.md, "Middleware stats"), all labelled {route, middleware}:
//   sluice_adaptive_concurrency_rejected_total          requests shed above the limit (counter)
//   sluice_adaptive_concurrency_{limit,in_flight,gradient,min_rtt_seconds,sample_rtt_seconds}
//       the controller's figures, read at scrape time (gauges)
// The counter is made once per config item and only incremented on the request path; the
// gauges are built from a snapshot by the middleware's collectable at scrape time.
//
//   prometheus::Counter* rejected = adaptive_concurrency_rejected(registry, "api", "ac");
//   auto families = adaptive_concurrency_gauges(controller.snapshot(), "api", "ac");
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "resilience/gradient_controller.hpp"

namespace prometheus {
class Counter;
class Registry;
}  // namespace prometheus

namespace sluice::middleware {

// Registers (or finds again, after a reload) the counter and the instance's series; null when
// `registry` is.
prometheus::Counter* adaptive_concurrency_rejected(prometheus::Registry* registry,
                                                   const std::string& route,
                                                   const std::string& middleware);

// The controller's figures as gauge families, one series each, for a scrape.
std::vector<prometheus::MetricFamily> adaptive_concurrency_gauges(
    const resilience::GradientSnapshot& s, const std::string& route, const std::string& middleware);

}  // namespace sluice::middleware
