#include "middleware/gate/gated_middleware.hpp"

#include <prometheus/counter.h>

#include <vector>

namespace sluice::middleware {
namespace {

// Per request: which gates let their middleware run, with the breaker permit it ran under.
// post_handle and recover reach the middleware only when its pre_handle ran.
struct GateRuns {
  struct Run {
    const GatedMiddleware* gate;
    resilience::Permit permit;
  };
  std::vector<Run> runs;

  Run* find(const GatedMiddleware* gate) {
    for (auto& r : runs)
      if (r.gate == gate) return &r;
    return nullptr;
  }
};

}  // namespace

GatedMiddleware::GatedMiddleware(std::shared_ptr<Middleware> inner, std::string route,
                                 std::unique_ptr<Rollout> rollout, std::unique_ptr<Guard> guard,
                                 GateStats stats, const Clock& clock)
    : inner_(std::move(inner)),
      route_(std::move(route)),
      rollout_(std::move(rollout)),
      guard_(std::move(guard)),
      clock_(clock),
      skipped_rollout_(stats.skipped_rollout),
      skipped_open_(stats.skipped_breaker_open) {
  if (guard_) {
    breaker_ = std::make_unique<resilience::CircuitBreaker>(route_ + "/" + std::string(name()),
                                                            guard_->breaker, clock);
  }
}

Decision GatedMiddleware::step_aside(Exchange& ex, std::string_view reason,
                                     prometheus::Counter* counter) {
  ex.context().mark_skipped(name(), reason);
  if (counter != nullptr) counter->Increment();
  inner_->on_skipped(ex);
  return Decision::next();
}

Decision GatedMiddleware::pre_handle(Exchange& ex) {
  if (rollout_ && !rollout_->selects(ex)) return step_aside(ex, "rollout", skipped_rollout_);
  resilience::Permit permit{.allowed = true};
  if (breaker_) {
    permit = breaker_->try_acquire();
    if (!permit) {
      if (guard_->skip_when_open) return step_aside(ex, "breaker_open", skipped_open_);
      const auto wait =
          std::chrono::ceil<std::chrono::seconds>(breaker_->retry_after(clock_.now()));
      ex.answer_error(503, "circuit_open",
                      std::string(name()) + " is unavailable (its breaker is open)");
      ex.response().set_header("Retry-After", std::to_string(std::max<long long>(1, wait.count())));
      return Decision::respond();
    }
  }
  auto* runs = ex.context().get<GateRuns>();
  if (runs == nullptr) runs = &ex.context().emplace<GateRuns>();
  runs->runs.push_back({this, permit});
  try {
    return inner_->pre_handle(ex);
  } catch (...) {
    if (breaker_) breaker_->on_complete(permit, Nanos{0}, true);
    runs->runs.back().permit.allowed = false;  // counted already
    throw;
  }
}

void GatedMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) {
  auto* runs = ex.context().get<GateRuns>();
  GateRuns::Run* run = runs != nullptr ? runs->find(this) : nullptr;
  if (run == nullptr) return;  // it stepped aside (or answered 503 for an open breaker)
  const bool judge = breaker_ && run->permit.allowed;
  const resilience::Permit permit = run->permit;
  run->permit.allowed = false;  // judged once
  try {
    inner_->post_handle(ex, elapsed);  // first: a middleware may finish its own answer here
  } catch (...) {
    if (judge) breaker_->on_complete(permit, Nanos{0}, true);
    throw;
  }
  if (!judge) return;
  // Its own failure: it answered with a 5xx (its dependency is down), not the handler.
  const bool failed = ex.answered_by() == name() && ex.response().status() >= 500;
  breaker_->on_complete(permit, Nanos{0}, failed);
}

bool GatedMiddleware::recover(Exchange& ex, const std::exception_ptr& error) {
  auto* runs = ex.context().get<GateRuns>();
  if (runs == nullptr || runs->find(this) == nullptr) return false;
  return inner_->recover(ex, error);
}

}  // namespace sluice::middleware
