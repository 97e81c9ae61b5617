// The chain runner: a small state machine over the phases pre -> handler -> post -> done.
// A hook that waits parks the machine (Decision::wait / defer) and a Resume restarts it on the
// request's executor; hooks that do not wait cost one loop iteration and no allocation.
#include "sluice/exchange.hpp"

#include "sluice/exchange_driver.hpp"
#include "sluice/extension/json_answer.hpp"

#include "core/steady_now.hpp"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace sluice {

// ---- Resume ---------------------------------------------------------------------------------

Resume::Resume(Resume&& other) noexcept
    : host_(std::move(other.host_)),
      exchange_(std::exchange(other.exchange_, nullptr)),
      wait_id_(other.wait_id_) {}

Resume& Resume::operator=(Resume&& other) noexcept {
  if (this != &other) {
    if (host_) fire(Decision::next(), nullptr, true);
    host_ = std::move(other.host_);
    exchange_ = std::exchange(other.exchange_, nullptr);
    wait_id_ = other.wait_id_;
  }
  return *this;
}

Resume::~Resume() {
  if (host_) fire(Decision::next(), nullptr, true);
}

void Resume::operator()(Decision decision) {
  if (host_) fire(decision, nullptr, false);
}

void Resume::with(Continuation continuation) {
  if (host_) fire(Decision::next(), &continuation, false);
}

void Resume::answer(int status, std::string_view content_type, std::string body) {
  with([status, type = std::string(content_type), body = std::move(body)](Exchange& ex) mutable {
    return ex.answer(status, type, std::move(body));
  });
}

void Resume::answer_error(int status, std::string_view error, std::string_view message) {
  with([status, error = std::string(error), message = std::string(message)](Exchange& ex) {
    return ex.answer_error(status, error, message);
  });
}

void Resume::fire(Decision decision, Continuation* continuation, bool abandoned) {
  auto host = std::move(host_);
  host_.reset();
  Exchange* exchange = exchange_;
  std::uint64_t wait_id = wait_id_;
  // On the request's own thread, after the waiting hook returned (an I/O completion, a timer):
  // continue now. Nesting is bounded (a resumed request may resume another, e.g. a bulkhead
  // handing its slot on), so a queue of waiters cannot grow the stack.
  thread_local int inline_depth = 0;
  if (!abandoned && inline_depth < 2 && host->in_own_thread() && !exchange->advancing_) {
    ++inline_depth;
    if (continuation != nullptr) {
      exchange->continue_with(wait_id, *continuation);
    } else {
      exchange->resume_with(wait_id, decision, false);
    }
    --inline_depth;
    return;
  }
  // The host stays alive until the posted function ran, and with it the exchange it owns.
  ExchangeHost* raw = host.get();
  if (continuation != nullptr) {
    raw->post([host = std::move(host), exchange, wait_id, fn = std::move(*continuation)] {
      exchange->continue_with(wait_id, fn);
    });
    return;
  }
  raw->post([host = std::move(host), exchange, wait_id, decision, abandoned] {
    exchange->resume_with(wait_id, decision, abandoned);
  });
}

// ---- Exchange -------------------------------------------------------------------------------

Exchange::Exchange(ExchangeHost& host, Request request, Response response)
    : host_(&host), request_(request), response_(response) {}

void Exchange::reset(SteadyTime steady_now, std::chrono::system_clock::time_point wall_now,
                     std::string_view connection_ip) {
  context_.begin(steady_now, wall_now, connection_ip);
  route_ = nullptr;
  chain_ = nullptr;
  handler_ = nullptr;
  done_ = nullptr;
  phase_ = Phase::kIdle;
  next_ = entered_ = post_next_ = 0;
  answered_by_ = -1;
  waiting_ = cancelled_ = timing_ = have_end_ = hook_time_valid_ = false;
  finished_at_ = steady_now;  // until finish(): a host answering without the chain reads this
  times_.clear();
  cancel_callbacks_.clear();
  error_ = nullptr;
  detail_.clear();
  upstream_.clear();
  upstream_latency_ = std::chrono::nanoseconds{0};
  bytes_in_ = 0;
  request_stream_.reset();
  response_stream_.reset();
  upgrade_stream_.reset();
}

std::uint64_t Exchange::bytes_out() const {
  if (response_stream_) return response_stream_->length().value_or(0);
  return response_.body().size();
}

Decision Exchange::answer(int status, std::string_view content_type, std::string body) {
  response_stream_.reset();
  response_.clear();
  response_.set_status(status);
  response_.set_body(std::move(body), content_type);
  return Decision::respond();
}

Decision Exchange::answer_error(int status, std::string_view error, std::string_view message) {
  nlohmann::json body = {
      {"error", error}, {"message", message}, {"request_id", context_.request_id()}};
  set_detail(error);
  return answer(status, "application/json",
                extension::json_text(body, extension::JsonLayout::kCompact));
}

std::string_view Exchange::answered_by() const {
  if (answered_by_ < 0 || chain_ == nullptr) return {};
  return chain_->active()[static_cast<std::size_t>(answered_by_)]->name();
}

void Exchange::post(std::function<void()> fn) {
  host_->post(std::move(fn));
}

void Exchange::post_after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  host_->post_after(delay, std::move(fn));
}

Resume Exchange::defer() {
  waiting_ = true;
  hook_time_valid_ = false;  // the hook goes on later: its start is no longer "now"
  host_->on_wait();
  return Resume(host_->shared_from_this(), this, ++wait_id_);
}

void Exchange::run(const ChainSnapshot& chain, Handler& handler, DoneFn done) {
  chain_ = &chain;
  handler_ = &handler;
  done_ = std::move(done);
  phase_ = Phase::kPre;
  clock_ = host_->clock();
  timing_ = chain.times_middlewares();
  if (timing_) times_.assign(chain.active().size(), std::chrono::nanoseconds{0});
  for (Observer* o : chain.observers())
    o->on_request_start(*this);
  advance();
}

// The host's clock; without one the real steady clock, read inline (no virtual call).
inline SteadyTime Exchange::read_clock() const {
  return clock_ == nullptr ? detail::steady_now() : clock_->now();
}

namespace {
// The clock a host without one of its own stands for, looked up once (not per hook_time call:
// a function-local static's guard per call cost ≈ 14 instructions, callgrind).
const Clock* const real_steady_clock = &system_steady_clock();
}  // namespace

SteadyTime Exchange::hook_time(const Clock& clock) const {
  if (hook_time_valid_ && &clock == (clock_ != nullptr ? clock_ : real_steady_clock))
    return hook_started_;
  return clock.now();
}

// The end of one hook is the start of the next: hook_started_ moves on, one clock read per hook.
// Inline (only this file calls it): ten calls a request with five middlewares.
inline void Exchange::charge(std::size_t index, SteadyTime since) {
  if (!timing_) return;
  const SteadyTime now = read_clock();
  times_[index] += now - since;
  hook_started_ = now;
  hook_time_valid_ = true;
}

void Exchange::advance() {
  const bool outer = advancing_;
  advancing_ = true;
  advance_steps();
  advancing_ = outer;
}

void Exchange::advance_steps() {
  while (!waiting_) {
    switch (phase_) {
      case Phase::kPre:
        step_pre();
        break;
      case Phase::kHandler:
        step_handler();
        break;
      case Phase::kPost:
        step_post();
        break;
      case Phase::kDone:
        finish();
        return;
      case Phase::kIdle:
        return;
    }
  }
}

// Runs pre_handle hooks until one answers, waits or throws, or the chain ends. The loop stays
// here rather than going back through advance() so a no-op middleware costs one virtual call.
void Exchange::step_pre() {
  const auto& mws = chain_->active();
  const std::size_t n = mws.size();
  // After a waiting hook, charge() has just read the next hook's start: no second read.
  if (timing_ && next_ < n && !hook_time_valid_) {
    hook_started_ = read_clock();
    hook_time_valid_ = true;
  }
  while (next_ < n) {
    entered_ = next_ + 1;
    // A pre_handle that never does anything (Middleware::skip_hooks) is not called and takes no
    // clock read: the next hook's time starts at the last read, a few instructions earlier.
    if (!mws[next_]->calls_pre_handle()) {
      ++next_;
      continue;
    }
    Decision d = Decision::next();
    try {
      d = mws[next_]->pre_handle(*this);
    } catch (...) {
      charge(next_, hook_started_);
      waiting_ = false;
      handle_exception(std::current_exception(), entered_);
      return;
    }
    if (d.kind() == Decision::Kind::kNext && !waiting_) {
      charge(next_, hook_started_);
      ++next_;
      continue;
    }
    if (d.kind() == Decision::Kind::kWait) {
      if (!waiting_) {  // a contract violation: wait() without defer()
        handle_exception(std::make_exception_ptr(std::logic_error(
                             std::string(mws[next_]->name()) + " returned wait() without defer()")),
                         entered_);
      }
      return;  // resume_with continues
    }
    if (waiting_) {  // deferred but did not say wait(): the returned decision wins
      waiting_ = false;
      ++wait_id_;
    }
    charge(next_, hook_started_);
    after_pre_decision(d);
    if (phase_ != Phase::kPre) return;
  }
  phase_ = Phase::kHandler;
}

void Exchange::after_pre_decision(Decision d) {
  if (d.kind() == Decision::Kind::kRespond) {
    answered_by_ = static_cast<std::ptrdiff_t>(next_);
    phase_ = Phase::kPost;
    post_next_ = entered_;
    return;
  }
  ++next_;
}

void Exchange::step_handler() {
  Decision d = Decision::respond();
  try {
    d = handler_->handle(*this);
  } catch (...) {
    waiting_ = false;
    handle_exception(std::current_exception(), entered_);
    return;
  }
  if (d.kind() == Decision::Kind::kWait && waiting_) return;
  waiting_ = false;
  phase_ = Phase::kPost;
  post_next_ = entered_;
}

// post_handle hooks, innermost first. `elapsed` is read once for the whole phase: one clock
// read per request instead of one per middleware. With timing, that read is also the first
// hook's start, each hook's end the next one's start, and the last end the request's end.
void Exchange::step_post() {
  const auto& mws = chain_->active();
  std::chrono::nanoseconds elapsed{0};
  const bool read = post_next_ > 0;
  if (read) {
    hook_started_ = read_clock();
    hook_time_valid_ = timing_;  // without timing, the reading is not moved on hook by hook
    elapsed = hook_started_ - context_.start_steady();
  }
  while (post_next_ > 0) {
    const std::size_t i = --post_next_;
    if (!mws[i]->calls_post_handle()) continue;  // see step_pre
    try {
      mws[i]->post_handle(*this, elapsed);
    } catch (...) {
      waiting_ = false;
      charge(i, hook_started_);
      handle_exception(std::current_exception(), i);
      return;
    }
    charge(i, hook_started_);
    if (waiting_) {  // its continuation runs later: the reading is not its "now"
      hook_time_valid_ = false;
      return;
    }
  }
  if (read && timing_) {  // the last hook's end is the request's
    finished_at_ = hook_started_;
    have_end_ = true;
  }
  phase_ = Phase::kDone;
}

// recover() of the middlewares below `entered`, innermost first; then post_handle continues
// for the same middlewares so observers and metrics see the outcome.
void Exchange::handle_exception(std::exception_ptr error, std::size_t entered) {
  error_ = error;
  hook_time_valid_ = false;  // recover() runs at no hook's start
  bool answered = false;
  const auto& mws = chain_->active();
  for (std::size_t i = entered; i-- > 0 && !answered;) {
    try {
      answered = mws[i]->recover(*this, error);
    } catch (...) {
      answered = false;
    }
  }
  if (!answered) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("request {} on route {}: unhandled exception: {}", context_.request_id(),
                  route_ ? route_->name : std::string("-"), what);
    answer_error(500, "internal_error", "the server failed to handle this request");
  }
  phase_ = Phase::kPost;
  post_next_ = entered;
}

void Exchange::resume_with(std::uint64_t wait_id, Decision d, bool abandoned) {
  if (!waiting_ || wait_id != wait_id_ || phase_ == Phase::kIdle) return;  // stale or cancelled
  waiting_ = false;
  if (abandoned) {
    const std::size_t entered = phase_ == Phase::kPost ? post_next_ : entered_;
    handle_exception(std::make_exception_ptr(std::runtime_error("a waiting hook lost its Resume")),
                     entered);
    advance();
    return;
  }
  after_wait(d);
}

// The rest of a waiting hook: the same rules as the hook's own return (step_pre), on this
// request's executor. `advancing_` is set meanwhile so a Resume fired inside posts, as it would
// inside a hook, instead of running the machine under the continuation's feet.
void Exchange::continue_with(std::uint64_t wait_id, const Resume::Continuation& continuation) {
  if (!waiting_ || wait_id != wait_id_ || phase_ == Phase::kIdle) return;  // stale or cancelled
  waiting_ = false;
  const std::size_t entered = phase_ == Phase::kPost ? post_next_ : entered_;
  const bool outer = advancing_;
  advancing_ = true;
  Decision d = Decision::next();
  std::exception_ptr error;
  try {
    d = continuation(*this);
  } catch (...) {
    error = std::current_exception();
  }
  advancing_ = outer;
  if (!error && d.kind() == Decision::Kind::kWait) {
    if (waiting_) return;  // waits again: its Resume continues
    error = std::make_exception_ptr(
        std::logic_error("a Resume continuation returned wait() without defer()"));
  }
  if (error) {
    waiting_ = false;
    if (phase_ == Phase::kPre) charge(next_, hook_started_);
    handle_exception(error, entered);
    advance();
    return;
  }
  if (waiting_) {  // deferred but did not say wait(): the returned decision wins
    waiting_ = false;
    ++wait_id_;
  }
  after_wait(d);
}

void Exchange::after_wait(Decision d) {
  switch (phase_) {
    case Phase::kPre:
      charge(next_, hook_started_);
      after_pre_decision(d);
      break;
    case Phase::kHandler:
      phase_ = Phase::kPost;
      post_next_ = entered_;
      break;
    default:
      break;  // post_handle waits: the loop simply goes on downwards
  }
  advance();
}

void Exchange::cancel() {
  if (cancelled_ || phase_ == Phase::kIdle || phase_ == Phase::kDone) return;
  cancelled_ = true;
  auto callbacks = std::move(cancel_callbacks_);
  cancel_callbacks_.clear();
  for (auto& cb : callbacks)
    cb();
  if (waiting_) {
    waiting_ = false;
    ++wait_id_;  // a late Resume is now stale
    if (phase_ != Phase::kPost) {
      post_next_ = entered_;
      phase_ = Phase::kPost;
    }
    // 499: nginx's "client closed request"; only logs and metrics ever see it.
    answer_error(499, "client_closed", "the client closed the connection");
    advance();
  }
}

void Exchange::finish() {
  phase_ = Phase::kIdle;
  hook_time_valid_ = false;
  if (!have_end_) finished_at_ = read_clock();
  for (Observer* o : chain_->observers())
    o->on_request_end(*this);
  auto done = std::move(done_);
  done_ = nullptr;
  if (done) done();
}

}  // namespace sluice
