#include "middleware/circuit_breaker/circuit_breaker_middleware.hpp"

#include <prometheus/counter.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "sluice/instance_state.hpp"

namespace sluice::middleware {

namespace {
// What pre_handle leaves for post_handle: the permit to report on.
struct BreakerCall {
  ManagedBreaker* breaker = nullptr;
  // Keeps a registry breaker (header keys) alive for the request; the middleware holds the
  // breaker of route and upstream keys itself, so those need no reference-count traffic.
  std::shared_ptr<ManagedBreaker> hold;
  resilience::Permit permit;
  SteadyTime started{};
};
}  // namespace

bool ErrorPolicy::is_error(const Exchange& ex) const {
  const int status = ex.response().status();
  const std::string_view detail = ex.detail();
  if (status_5xx && status >= 500 && status <= 599) return true;
  if (std::find(statuses.begin(), statuses.end(), status) != statuses.end()) return true;
  if (upstream_connect_failure && (status == 502 || detail == "upstream_unreachable")) return true;
  if (timeout && (status == 504 || detail == "upstream_timeout")) return true;
  if (exception && ex.error() != nullptr) return true;
  return false;
}

CircuitBreakerMiddleware::CircuitBreakerMiddleware(std::string name, std::string route,
                                                   CircuitBreakerMiddlewareConfig config,
                                                   std::shared_ptr<BreakerRegistry> registry,
                                                   const Clock& clock)
    : name_(std::move(name)),
      route_(std::move(route)),
      config_(std::move(config)),
      registry_(std::move(registry)),
      clock_(clock) {
  if (config_.key.kind == BreakerKey::Kind::kRoute) {
    fixed_ = registry_->get(config_.identity, name_ + ":" + route_, config_.breaker, clock_);
  } else if (config_.key.kind == BreakerKey::Kind::kUpstream) {
    fixed_ =
        registry_->get(config_.identity, name_ + ":" + config_.key.value, config_.breaker, clock_);
  }
}

std::shared_ptr<ManagedBreaker> CircuitBreakerMiddleware::breaker_for(const Exchange& ex) {
  if (fixed_) return fixed_;
  std::string_view value = ex.request().header(config_.key.value);
  std::string name = name_ + ":";
  name.append(value.empty() ? std::string_view("-") : value);
  return registry_->get(config_.identity, name, config_.breaker, clock_);
}

Decision CircuitBreakerMiddleware::pre_handle(Exchange& ex) {
  std::shared_ptr<ManagedBreaker> held;
  ManagedBreaker* breaker = fixed_.get();
  if (breaker == nullptr) {
    held = breaker_for(ex);
    breaker = held.get();
  }
  resilience::Permit permit = breaker->breaker.try_acquire();
  if (!permit) {
    if (breaker->rejected != nullptr) breaker->rejected->Increment();
    const auto wait = breaker->breaker.retry_after(clock_.now());
    const double seconds = std::chrono::duration<double>(wait).count();
    const long long retry = std::max(1LL, static_cast<long long>(std::ceil(seconds)));
    // A rejection in CLOSED is the ramp after a recovery turning part of the traffic away.
    const std::string state = permit.state == resilience::State::kClosed
                                  ? "ramping up after a recovery"
                                  : std::string(resilience::to_string(permit.state));
    const Decision d = ex.answer_error(503, "circuit_open",
                                       "circuit breaker \"" + breaker->breaker.name() + "\" is " +
                                           state + "; retry in " + std::to_string(retry) + " s");
    ex.response().set_header("Retry-After", std::to_string(retry));
    return d;
  }
  auto& call = InstanceState<BreakerCall>::emplace(ex.context(), this);
  call.breaker = breaker;
  call.hold = std::move(held);
  call.permit = permit;
  // The response time runs from this hook's start to post_handle's, both the chain's readings
  // when it times hooks on this clock (no read of our own).
  call.started = ex.hook_time(clock_);
  return Decision::next();
}

void CircuitBreakerMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  auto* call = InstanceState<BreakerCall>::find(ex.context(), this);
  if (call == nullptr || call->breaker == nullptr) return;  // rejected here: nothing to report
  ManagedBreaker* breaker = std::exchange(call->breaker, nullptr);
  if (ex.cancelled()) {
    breaker->breaker.on_abandon(call->permit);
    return;
  }
  const SteadyTime now = ex.hook_time(clock_);
  breaker->breaker.on_complete(call->permit, now - call->started, config_.errors.is_error(ex), now);
}

}  // namespace sluice::middleware
