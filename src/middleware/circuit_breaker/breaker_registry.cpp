#include "middleware/circuit_breaker/breaker_registry.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

namespace sluice::middleware {

using resilience::State;

BreakerRegistry::BreakerRegistry(prometheus::Registry* metrics, std::size_t max_breakers)
    : max_breakers_(max_breakers) {
  if (metrics == nullptr) return;
  state_ = &prometheus::BuildGauge()
                .Name("sluice_circuit_breaker_state")
                .Help("Circuit breaker state: 0 closed, 1 open, 2 half-open")
                .Register(*metrics);
  transitions_ = &prometheus::BuildCounter()
                      .Name("sluice_circuit_breaker_transitions_total")
                      .Help("Circuit breaker state changes")
                      .Register(*metrics);
  rejected_ = &prometheus::BuildCounter()
                   .Name("sluice_circuit_breaker_rejected_total")
                   .Help("Requests rejected by an open or half-open circuit breaker")
                   .Register(*metrics);
}

void BreakerRegistry::instrument(ManagedBreaker& b) {
  const std::string& name = b.breaker.name();
  prometheus::Gauge* gauge = nullptr;
  if (state_ != nullptr) {
    gauge = &state_->Add({{"breaker", name}});
    gauge->Set(static_cast<double>(b.breaker.state()));
    b.rejected = &rejected_->Add({{"breaker", name}});
  }
  auto* transitions = transitions_;
  b.breaker.add_listener([gauge, transitions](std::string_view breaker, State from, State to) {
    if (gauge != nullptr) gauge->Set(static_cast<double>(to));
    if (transitions != nullptr) {
      transitions
          ->Add({{"breaker", std::string(breaker)},
                 {"from", std::string(resilience::to_string(from))},
                 {"to", std::string(resilience::to_string(to))}})
          .Increment();
    }
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
