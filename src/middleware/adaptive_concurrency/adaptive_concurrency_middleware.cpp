#include "middleware/adaptive_concurrency/adaptive_concurrency_middleware.hpp"

#include <prometheus/counter.h>

#include "sluice/instance_state.hpp"

namespace sluice::middleware {
namespace {
struct AdmittedCall {
  SteadyTime started{};
  bool admitted = false;
};
}  // namespace

AdaptiveConcurrencyMiddleware::AdaptiveConcurrencyMiddleware(std::string name, std::string route,
                                                             resilience::GradientConfig config,
                                                             const Clock& clock,
                                                             prometheus::Counter* rejected)
    : name_(std::move(name)),
      route_(std::move(route)),
      clock_(clock),
      controller_(config, clock),
      rejected_(rejected) {}

Decision AdaptiveConcurrencyMiddleware::pre_handle(Exchange& ex) {
  if (!controller_.try_acquire()) {
    if (rejected_ != nullptr) rejected_->Increment();
    return ex.answer_error(503, "concurrency_limited",
                           "the upstream is at its measured concurrency limit (" +
                               std::to_string(controller_.limit()) + ")");
  }
  auto& call = InstanceState<AdmittedCall>::emplace(ex.context(), this);
  call.admitted = true;
  call.started = clock_.now();
  return Decision::next();
}

void AdaptiveConcurrencyMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  auto* call = InstanceState<AdmittedCall>::find(ex.context(), this);
  if (call == nullptr || !call->admitted) return;
  call->admitted = false;
  // The time of what this middleware guards (the rest of the chain and the upstream), not of
  // the middlewares before it. A cancelled request is not a latency sample.
  controller_.release(clock_.now() - call->started, !ex.cancelled());
}

}  // namespace sluice::middleware
