#include "middleware/circuit_breaker/circuit_breaker_stats.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace sluice::middleware {

CircuitBreakerStatFamilies circuit_breaker_stat_families(prometheus::Registry* registry) {
  if (registry == nullptr) return {};
  CircuitBreakerStatFamilies f;
  f.state = &prometheus::BuildGauge()
                 .Name("sluice_circuit_breaker_state")
                 .Help("Circuit breaker state: 0 closed, 1 open, 2 half-open")
                 .Register(*registry);
  f.transitions = &prometheus::BuildCounter()
                       .Name("sluice_circuit_breaker_transitions_total")
                       .Help("Circuit breaker state changes")
                       .Register(*registry);
  f.rejected = &prometheus::BuildCounter()
                    .Name("sluice_circuit_breaker_rejected_total")
                    .Help("Requests rejected by an open or half-open circuit breaker")
                    .Register(*registry);
  return f;
}

prometheus::Gauge* circuit_breaker_state_series(const CircuitBreakerStatFamilies& f,
                                                const std::string& breaker) {
  return f.state != nullptr ? &f.state->Add({{"breaker", breaker}}) : nullptr;
}

prometheus::Counter* circuit_breaker_rejected_series(const CircuitBreakerStatFamilies& f,
                                                     const std::string& breaker) {
  return f.rejected != nullptr ? &f.rejected->Add({{"breaker", breaker}}) : nullptr;
}

void count_circuit_breaker_transition(const CircuitBreakerStatFamilies& f, std::string_view breaker,
                                      std::string_view from, std::string_view to) {
  if (f.transitions == nullptr) return;
  f.transitions
      ->Add(
          {{"breaker", std::string(breaker)}, {"from", std::string(from)}, {"to", std::string(to)}})
      .Increment();
}

}  // namespace sluice::middleware
