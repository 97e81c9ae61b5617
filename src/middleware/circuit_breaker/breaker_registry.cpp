#include "middleware/circuit_breaker/breaker_registry.hpp"

#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

namespace sluice::middleware {

using resilience::State;

BreakerRegistry::BreakerRegistry(prometheus::Registry* metrics, std::size_t max_breakers)
    : max_breakers_(max_breakers) {
  stats_ = circuit_breaker_stat_families(metrics);
}

void BreakerRegistry::instrument(ManagedBreaker& b) {
  const std::string& name = b.breaker.name();
  prometheus::Gauge* gauge = circuit_breaker_state_series(stats_, name);
  if (gauge != nullptr) gauge->Set(static_cast<double>(b.breaker.state()));
  b.rejected = circuit_breaker_rejected_series(stats_, name);
  const CircuitBreakerStatFamilies stats = stats_;
  b.breaker.add_listener([gauge, stats](std::string_view breaker, State from, State to) {
    if (gauge != nullptr) gauge->Set(static_cast<double>(to));
    count_circuit_breaker_transition(stats, breaker, resilience::to_string(from),
                                     resilience::to_string(to));
    if (to == State::kOpen) {
      spdlog::warn("circuit breaker {}: {} -> {}", breaker, resilience::to_string(from),
                   resilience::to_string(to));
    } else {
      spdlog::info("circuit breaker {}: {} -> {}", breaker, resilience::to_string(from),
                   resilience::to_string(to));
    }
  });
}

std::shared_ptr<ManagedBreaker> BreakerRegistry::get(const std::string& identity,
                                                     const std::string& name,
                                                     const resilience::CircuitBreakerConfig& config,
                                                     const Clock& clock) {
  std::string key = identity;
  key += '\n';
  key += name;
  std::lock_guard lock(mu_);
  if (auto it = slots_.find(key); it != slots_.end()) {
    it->second.last_used = ++tick_;
    return it->second.breaker;
  }
  auto b = std::make_shared<ManagedBreaker>(name, config, clock);
  instrument(*b);
  slots_.emplace(std::move(key), Slot{b, ++tick_});
  if (slots_.size() > max_breakers_) evict_locked();
  return b;
}

// Drops the least recently used breakers nobody holds until the bound is met again. Breakers
// a middleware holds (use_count > 1) stay: the bound is then exceeded rather than lose state
// that is in use.
void BreakerRegistry::evict_locked() {
  while (slots_.size() > max_breakers_) {
    auto victim = slots_.end();
    for (auto it = slots_.begin(); it != slots_.end(); ++it) {
      if (it->second.breaker.use_count() > 1) continue;
      if (victim == slots_.end() || it->second.last_used < victim->second.last_used) victim = it;
    }
    if (victim == slots_.end()) return;
    slots_.erase(victim);
  }
}

std::vector<std::shared_ptr<ManagedBreaker>> BreakerRegistry::find(std::string_view name) const {
  std::vector<std::shared_ptr<ManagedBreaker>> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, slot] : slots_)
    if (slot.breaker->breaker.name() == name) out.push_back(slot.breaker);
  return out;
}

std::vector<std::shared_ptr<ManagedBreaker>> BreakerRegistry::all() const {
  std::vector<std::shared_ptr<ManagedBreaker>> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, slot] : slots_)
    out.push_back(slot.breaker);
  return out;
}

std::size_t BreakerRegistry::size() const {
  std::lock_guard lock(mu_);
  return slots_.size();
}

}  // namespace sluice::middleware
