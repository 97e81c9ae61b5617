// Gate stats — the one declaration of the `rollout:` / `guard:` gate's metric family
// (docs/OBSERVABILITY.md, "Middleware stats"):
//   sluice_middleware_skipped_total{route,middleware,reason=rollout|breaker_open}
// The gate wraps a middleware of any type, so the family is named for middlewares in general,
// not for one type; `middleware` is the wrapped instance. Built once per config item; a step
// aside only increments.
//
//   GateStats stats = gate_stats(spec.services->metrics.get(), "api", "auth");
#pragma once

#include <string>

namespace prometheus {
class Counter;
class Registry;
}  // namespace prometheus

namespace sluice::middleware {

// One gated instance's series; any pointer may be null (no metrics registry).
struct GateStats {
  prometheus::Counter* skipped_rollout = nullptr;
  prometheus::Counter* skipped_breaker_open = nullptr;
};

// Registers (or finds again, after a reload) the family and the instance's series.
GateStats gate_stats(prometheus::Registry* registry, const std::string& route,
                     const std::string& middleware);

}  // namespace sluice::middleware
