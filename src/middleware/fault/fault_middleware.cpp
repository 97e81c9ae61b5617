// Per request: every enabled fault whose match fits draws once from its own seeded stream, in
// config order (so one fault's outcome never shifts another's sequence). Hit delays add up;
// the first hit abort answers (after the delays, like Envoy); the slowest hit throttle paces
// the response in post_handle. Dependency faults are not drawn here: they live in
// UpstreamFaults and the proxy draws them per upstream call.
#include "middleware/fault/fault_middleware.hpp"

#include <algorithm>

#include "middleware/fault/injected_faults.hpp"
#include "server/connection_control.hpp"

namespace sluice::middleware {

namespace {
using fault::FaultKind;
using std::chrono::nanoseconds;

// The slowest response throttle hit in pre_handle, applied in post_handle.
struct ThrottlePlan {
  std::uint64_t bytes_per_second;
  fault::FaultState* state;
};

constexpr nanoseconds kMaxThrottleWait = std::chrono::minutes(1);

void record(Exchange& ex, const fault::FaultState& state, FaultKind kind, nanoseconds delay,
            int status) {
  auto& injected = ex.context().slots().get_or_emplace<fault::InjectedFaults>();
  injected.list.push_back({state.name(), kind, delay, status});
}

// Waits `delay` on the request's worker (a timer; the worker serves others meanwhile), then
// continues with `decision`.
void wait_then(Exchange& ex, nanoseconds delay, Decision decision,
               std::shared_ptr<std::atomic<std::size_t>> active) {
  // std::function needs a copyable callable; the Resume is move-only.
  auto resume = std::make_shared<Resume>(ex.defer());
  ex.post_after(delay, [resume, decision, active = std::move(active)] {
    active->fetch_sub(1, std::memory_order_relaxed);
    (*resume)(decision);
  });
}
}  // namespace

struct FaultMiddleware::Plan {
  std::vector<std::pair<fault::FaultState*, nanoseconds>> delays;  // allocates only on a hit
  const fault::FaultSpec* abort = nullptr;
  fault::FaultState* abort_state = nullptr;
  int header_abort_status = 0;
  std::uint64_t throughput = 0;
  fault::FaultState* throttle_state = nullptr;
};

FaultMiddleware::FaultMiddleware(std::string name, FaultMiddlewareConfig config,
                                 fault::FaultBoard& board)
    : name_(std::move(name)),
      config_(std::move(config)),
      board_(board),
      active_(std::make_shared<std::atomic<std::size_t>>(0)) {
  for (const auto& spec : config_.faults) {
    auto state = board_.declare(spec, config_.seed);
    declared_.push_back(state);
    if (spec.kind != FaultKind::kDependencyUnavailable) per_request_.push_back({&spec, state});
  }
  if (config_.headers.enabled) header_state_ = board_.header_fault(config_.seed);
}

FaultMiddleware::~FaultMiddleware() {
  for (const auto& state : declared_)
    board_.release(state);
}

bool FaultMiddleware::reserve_delay_slot() {
  auto n = active_->load(std::memory_order_relaxed);
  do {
    if (n >= config_.max_active_delays) return false;
  } while (!active_->compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return true;
}

Decision FaultMiddleware::pre_handle(Exchange& ex) {
  Plan plan;
  const std::string_view route = ex.route() != nullptr ? std::string_view(ex.route()->name) : "";
  const std::string_view path = ex.request().path();
  const std::string_view method = ex.request().method();
  for (const auto& a : per_request_) {
    if (!a.state->enabled() || !a.spec->match.matches(ex.request(), path, method, route)) continue;
    const auto draw = a.state->draw();
    if (!draw.hit) continue;
    switch (a.spec->kind) {
      case FaultKind::kDelay:
        plan.delays.emplace_back(a.state.get(), a.spec->delay.sample(a.state->seed(), draw.index));
        break;
      case FaultKind::kAbort:
        if (plan.abort == nullptr) {
          plan.abort = a.spec;
          plan.abort_state = a.state.get();
        }
        break;
      case FaultKind::kThrottle:
        if (plan.throughput == 0 || a.spec->throttle.bytes_per_second < plan.throughput) {
          plan.throughput = a.spec->throttle.bytes_per_second;
          plan.throttle_state = a.state.get();
        }
        break;
      case FaultKind::kDependencyUnavailable:
        break;
    }
  }
  if (header_state_) apply_header_faults(ex, plan);
  return finish_pre(ex, plan);
}

// Header faults draw from the "x-sluice-fault" stream: delay first, then abort.
void FaultMiddleware::apply_header_faults(Exchange& ex, Plan& plan) {
  if (!header_state_->enabled()) return;
  auto asked = read_header_faults(config_.headers, ex.request(), ex.context().client_ip());
  if (!asked.any()) return;
  auto* s = header_state_.get();
  if (asked.delay && s->draw_at(asked.delay_percentage).hit)
    plan.delays.emplace_back(s, *asked.delay);
  if (asked.abort_status && plan.abort == nullptr && s->draw_at(asked.abort_percentage).hit) {
    plan.header_abort_status = *asked.abort_status;
    plan.abort_state = s;
  }
  if (asked.throughput && (plan.throughput == 0 || *asked.throughput < plan.throughput)) {
    plan.throughput = *asked.throughput;
    plan.throttle_state = s;
  }
}

Decision FaultMiddleware::finish_pre(Exchange& ex, Plan& plan) {
  nanoseconds total{0};
  for (const auto& d : plan.delays)
    total += d.second;
  if (total > nanoseconds::zero() && !reserve_delay_slot()) {
    for (const auto& d : plan.delays)
      d.first->count_skipped();
    total = nanoseconds::zero();
  } else {
    for (const auto& [state, delay] : plan.delays) {
      state->count_injected(FaultKind::kDelay);
      record(ex, *state, FaultKind::kDelay, delay, 0);
    }
  }
  if (plan.throughput > 0) ex.context().emplace<ThrottlePlan>(plan.throughput, plan.throttle_state);

  Decision decision = Decision::next();
  if (plan.abort_state != nullptr) {
    const fault::FaultSpec* spec = plan.abort;
    const std::string& fault = plan.abort_state->name();
    if (spec != nullptr && spec->abort.reset) {
      // 444 (nginx: "closed without response") is what observers see; nothing is written.
      ex.context().emplace<server::ResetConnection>();
      ex.answer_error(444, "fault_reset", "connection reset by fault " + fault);
    } else if (spec != nullptr && !spec->abort.body.empty()) {
      ex.answer(spec->abort.status, spec->abort.content_type, spec->abort.body);
      ex.set_detail("fault_abort");
    } else {
      const int status = spec != nullptr ? spec->abort.status : plan.header_abort_status;
      ex.answer_error(status, "fault_abort", "fault injected by " + fault);
    }
    if (spec != nullptr)
      for (const auto& [h, v] : spec->abort.headers)
        ex.response().add_header(h, v);
    plan.abort_state->count_injected(FaultKind::kAbort);
    record(ex, *plan.abort_state, FaultKind::kAbort, nanoseconds::zero(),
           spec != nullptr && spec->abort.reset ? 0 : ex.response().status());
    decision = Decision::respond();
  } else if (total > nanoseconds::zero()) {
    ex.set_detail("fault_delay");
  }
  if (total == nanoseconds::zero()) return decision;
  wait_then(ex, total, decision, active_);
  return Decision::wait();
}

// Response throttling: the server writes a response in one go, so a bandwidth limit is
// simulated as a wait of body_bytes / bytes_per_second before the response is released —
// the client sees the same total time, but the bytes then arrive in one burst.
void FaultMiddleware::post_handle(Exchange& ex, nanoseconds) {
  const auto* plan = ex.context().get<ThrottlePlan>();
  if (plan == nullptr) return;
  const auto bytes = static_cast<double>(ex.bytes_out());
  const auto wait = std::min(nanoseconds(static_cast<std::int64_t>(
                                 bytes * 1e9 / static_cast<double>(plan->bytes_per_second))),
                             kMaxThrottleWait);
  if (wait <= nanoseconds::zero()) return;
  if (!reserve_delay_slot()) {
    plan->state->count_skipped();
    return;
  }
  plan->state->count_injected(FaultKind::kThrottle);
  record(ex, *plan->state, FaultKind::kThrottle, wait, 0);
  if (ex.detail().empty()) ex.set_detail("fault_throttle");
  wait_then(ex, wait, Decision::next(), active_);
}

}  // namespace sluice::middleware
