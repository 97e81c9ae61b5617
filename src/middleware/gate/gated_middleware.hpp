// GatedMiddleware — any middleware item with `rollout:` or `guard:` in its config runs inside
// one: the middleware steps aside (its hooks are not called; the request goes on) for requests
// outside its rollout, and while its guard's breaker is open when the guard says `on_open: skip`
// — the seed's "skip auth when the auth service is down", as Envoy's ext_authz
// failure_mode_allow but for any middleware. Every step aside is marked: Context::skipped() (the
// access log's "skipped", the span's sluice.skipped) and sluice_middleware_skipped_total.
//
//   - type: ext_auth
//     rollout: { percent: 10, by: "header:X-User", seed: 7, match: { header: X-Canary } }
//     guard: { on_open: skip, breaker: { strategy: error_count, threshold: 3 } }
//
// The guard's breaker counts the middleware's own failures: an exception from its pre_handle,
// or an answer of status >= 500 that it gave. `on_open: answer` answers 503 circuit_open instead.
#pragma once

#include <memory>
#include <string>

#include "middleware/gate/gate_stats.hpp"
#include "middleware/gate/rollout.hpp"
#include "resilience/circuit_breaker.hpp"
#include "sluice/exchange.hpp"

namespace sluice::middleware {

struct Guard {
  resilience::CircuitBreakerConfig breaker;
  bool skip_when_open = true;  // on_open: skip; false: answer 503
};

class GatedMiddleware final : public Middleware {
 public:
  GatedMiddleware(std::shared_ptr<Middleware> inner, std::string route,
                  std::unique_ptr<Rollout> rollout, std::unique_ptr<Guard> guard, GateStats stats,
                  const Clock& clock);

  std::string_view name() const override { return inner_->name(); }
  std::string_view type() const override { return inner_->type(); }
  InitResult init() override { return inner_->init(); }
  InitResult bind_config(const ConfigBuild& build) override { return inner_->bind_config(build); }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;
  bool recover(Exchange& ex, const std::exception_ptr& error) override;

  Middleware& inner() { return *inner_; }
  Rollout* rollout() { return rollout_.get(); }
  resilience::CircuitBreaker* breaker() { return breaker_.get(); }

 private:
  Decision step_aside(Exchange& ex, std::string_view reason, prometheus::Counter* counter);

  std::shared_ptr<Middleware> inner_;
  std::string route_;
  std::unique_ptr<Rollout> rollout_;
  std::unique_ptr<Guard> guard_;
  std::unique_ptr<resilience::CircuitBreaker> breaker_;
  const Clock& clock_;
  prometheus::Counter* skipped_rollout_ = nullptr;
  prometheus::Counter* skipped_open_ = nullptr;
};

}  // namespace sluice::middleware
