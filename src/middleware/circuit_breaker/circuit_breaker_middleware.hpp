// circuit_breaker — rejects requests with 503 while the breaker of their resource is open
// (Sentinel-style; see resilience/circuit_breaker.hpp for the state machine), and feeds the
// breaker the outcome of every request it let through.
//
//   - type: circuit_breaker
//     strategy: error_ratio        # slow_request_ratio | error_ratio | error_count
//     threshold: 0.5
//     retry_timeout_ms: 5000
//     key: route                   # or "upstream:<cluster>", "header:<Name>"
//     error_on: { status_5xx: true, statuses: [429], timeout: true }
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "middleware/circuit_breaker/breaker_registry.hpp"
#include "sluice/exchange.hpp"

namespace sluice::middleware {

// Which outcomes count as errors for the breaker. Upstream failures are seen as the proxy
// reports them: 502 / detail "upstream_unreachable", 504 / detail "upstream_timeout".
struct ErrorPolicy {
  bool status_5xx = true;     // any status 500..599
  std::vector<int> statuses;  // these statuses too (e.g. 429)
  bool upstream_connect_failure = true;
  bool timeout = true;
  bool exception = true;  // the handler or an inner middleware threw

  bool is_error(const Exchange& ex) const;
};

// Whose breaker a request uses.
struct BreakerKey {
  enum class Kind { kRoute, kUpstream, kHeader };
  Kind kind = Kind::kRoute;
  std::string value;  // the cluster name or the header name
};

struct CircuitBreakerMiddlewareConfig {
  resilience::CircuitBreakerConfig breaker;
  ErrorPolicy errors;
  BreakerKey key;
  std::string identity;  // the middleware's config text: part of every breaker's registry key
};

class CircuitBreakerMiddleware final : public Middleware {
 public:
  CircuitBreakerMiddleware(std::string name, std::string route,
                           CircuitBreakerMiddlewareConfig config,
                           std::shared_ptr<BreakerRegistry> registry, const Clock& clock);

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "circuit_breaker"; }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;

  // The breaker a request would use (created on first use).
  std::shared_ptr<ManagedBreaker> breaker_for(const Exchange& ex);

 private:
  std::string name_;
  std::string route_;
  CircuitBreakerMiddlewareConfig config_;
  std::shared_ptr<BreakerRegistry> registry_;
  const Clock& clock_;
  std::shared_ptr<ManagedBreaker> fixed_;  // for route and upstream keys: one breaker
};

}  // namespace sluice::middleware
