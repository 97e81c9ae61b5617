// adaptive_concurrency — sheds the requests beyond the concurrency the route's upstream sustains,
// measured rather than configured (Envoy's adaptive concurrency filter; the controller is
// resilience/gradient_controller.hpp): 503 with detail "concurrency_limited", so `fallback`
// rules for concurrency_limited answer instead. The limit, gradient and RTTs are metrics and
// GET /adaptive_concurrency on the admin API.
//
//   - type: adaptive_concurrency
//     update_interval_ms: 100
//     min_rtt_interval_ms: 60000
//     min_rtt_requests: 50
//     min_concurrency: 3
//     max_concurrency: 1000
//     buffer: 0.25
#pragma once

#include <memory>
#include <string>

#include "resilience/gradient_controller.hpp"
#include "sluice/exchange.hpp"

namespace prometheus {
class Counter;
}  // namespace prometheus

namespace sluice::middleware {

class AdaptiveConcurrencyMiddleware final : public Middleware {
 public:
  AdaptiveConcurrencyMiddleware(std::string name, std::string route,
                                resilience::GradientConfig config, const Clock& clock,
                                prometheus::Counter* rejected);

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "adaptive_concurrency"; }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;

  const std::string& route() const { return route_; }
  resilience::GradientController& controller() { return controller_; }
  // Keeps `held` alive as long as the middleware (its scrape-time metrics).
  void hold(std::shared_ptr<const void> held) { held_ = std::move(held); }

 private:
  std::string name_;
  std::string route_;
  const Clock& clock_;
  resilience::GradientController controller_;
  prometheus::Counter* rejected_;
  std::shared_ptr<const void> held_;
};

}  // namespace sluice::middleware
