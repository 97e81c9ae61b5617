// BreakerRegistry — every circuit breaker the gateway's middlewares use, by middleware identity
// and resource key, kept in GatewayServices::shared so a breaker's state survives reloads.
// Bounded: past max_breakers, the least recently used breakers that no middleware holds are
// dropped. It also wires each breaker to its metrics and transition log lines.
//
//   auto& reg = services->shared.get_or_emplace<BreakerRegistry>(services->metrics.get());
//   auto b = reg.get(identity, "cb:orders", config, *services->clock);
//   if (auto p = b->breaker.try_acquire()) ...; else b->rejected->Increment();
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "middleware/circuit_breaker/circuit_breaker_stats.hpp"
#include "resilience/circuit_breaker.hpp"

namespace sluice::middleware {

// One breaker and the metric series that belong to it.
struct ManagedBreaker {
  ManagedBreaker(std::string name, const resilience::CircuitBreakerConfig& config,
                 const Clock& clock)
      : breaker(std::move(name), config, clock) {}
  resilience::CircuitBreaker breaker;
  prometheus::Counter* rejected = nullptr;  // sluice_circuit_breaker_rejected_total{breaker}
};

class BreakerRegistry {
 public:
  // `metrics` may be null (unit tests without a registry): then nothing is exported.
  explicit BreakerRegistry(prometheus::Registry* metrics, std::size_t max_breakers = 10000);

  // The breaker of (identity, name), created with `config` on first use. `name` is the
  // breaker's display name and metrics label ("cb:orders").
  std::shared_ptr<ManagedBreaker> get(const std::string& identity, const std::string& name,
                                      const resilience::CircuitBreakerConfig& config,
                                      const Clock& clock);

  // Breakers whose display name is `name` (several middlewares may share one).
  std::vector<std::shared_ptr<ManagedBreaker>> find(std::string_view name) const;
  std::vector<std::shared_ptr<ManagedBreaker>> all() const;
  std::size_t size() const;

 private:
  struct Slot {
    std::shared_ptr<ManagedBreaker> breaker;
    std::uint64_t last_used = 0;
  };
  void evict_locked();
  void instrument(ManagedBreaker& b);

  const std::size_t max_breakers_;
  mutable std::mutex mu_;
  std::map<std::string, Slot, std::less<>> slots_;  // identity + '\n' + name
  std::uint64_t tick_ = 0;
  CircuitBreakerStatFamilies stats_;  // circuit_breaker_stats.hpp: the families' declaration
};

}  // namespace sluice::middleware
