#include "middleware/gate/gate_stats.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

namespace sluice::middleware {

GateStats gate_stats(prometheus::Registry* registry, const std::string& route,
                     const std::string& middleware) {
  if (registry == nullptr) return {};
  auto& skipped =
      prometheus::BuildCounter()
          .Name("sluice_middleware_skipped_total")
          .Help("Requests for which a middleware stepped aside (rollout, breaker_open).")
          .Register(*registry);
  return {&skipped.Add({{"route", route}, {"middleware", middleware}, {"reason", "rollout"}}),
          &skipped.Add({{"route", route}, {"middleware", middleware}, {"reason", "breaker_open"}})};
}

}  // namespace sluice::middleware
