// Circuit-breaker stats — the one declaration of circuit_breaker's metric families
// (docs/OBSERVABILITY.md, "Middleware stats"). The process-wide BreakerRegistry registers them;
// each breaker gets its series when created:
//   sluice_circuit_breaker_state{breaker}                 0 closed, 1 open, 2 half-open (gauge)
//   sluice_circuit_breaker_transitions_total{breaker,from,to}
//   sluice_circuit_breaker_rejected_total{breaker}
// `breaker` is the breaker's display name, which several routes' middlewares may share.
//
//   auto families = circuit_breaker_stat_families(registry);
//   prometheus::Counter* rejected = circuit_breaker_rejected_series(families, "cb:orders");
#pragma once

#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Gauge;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace sluice::middleware {

struct CircuitBreakerStatFamilies {
  prometheus::Family<prometheus::Gauge>* state = nullptr;
  prometheus::Family<prometheus::Counter>* transitions = nullptr;
  prometheus::Family<prometheus::Counter>* rejected = nullptr;
};

// Registers (or finds again) the families; `registry` may be null (all null).
CircuitBreakerStatFamilies circuit_breaker_stat_families(prometheus::Registry* registry);
// A breaker's series; null when the families are.
prometheus::Gauge* circuit_breaker_state_series(const CircuitBreakerStatFamilies& f,
                                                const std::string& breaker);
prometheus::Counter* circuit_breaker_rejected_series(const CircuitBreakerStatFamilies& f,
                                                     const std::string& breaker);
// Counts one state change (rare: not on the request path's fast case).
void count_circuit_breaker_transition(const CircuitBreakerStatFamilies& f, std::string_view breaker,
                                      std::string_view from, std::string_view to);

}  // namespace sluice::middleware
