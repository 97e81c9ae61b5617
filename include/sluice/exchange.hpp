// sluice::Exchange — one request on its way through a chain, as a middleware, handler or
// observer sees it: the request, the response being built, the per-request Context, and the
// means to wait without blocking a worker. What a host does to an exchange (reset, run, cancel)
// is in sluice/exchange_driver.hpp.
//
//   Decision pre_handle(Exchange& ex) override {
//     auto resume = std::make_shared<Resume>(ex.defer());  // the request waits, not the worker
//     ex.post_after(50ms, [resume] { (*resume)(Decision::next()); });
//     return Decision::wait();
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/body_stream.hpp"
#include "sluice/chain.hpp"
#include "sluice/context.hpp"
#include "sluice/http.hpp"
#include "sluice/middleware.hpp"

namespace sluice {

class Exchange;
class ExchangeDriver;
class ExchangeHost;  // the host's side: sluice/exchange_driver.hpp

// Continues a waiting exchange. Call it exactly once, from any thread: it hops back to the
// request's executor. A result for a request that is gone (client closed, already finished) is
// dropped safely. Destroying an uncalled Resume answers the request with a 500, so a lost
// callback cannot hang a client.
//
// How the waiting hook ends, decided where the wait ends:
//   resume(Decision::next());                                   // go on with the chain
//   resume.answer_error(401, "unauthorized", "no valid key");   // answer now: the chain stops
//   resume.with([](Exchange& ex) { ...; return Decision::next(); });  // anything else
// As for a hook, the decision is the only way to stop the chain. The answer and the continuation
// are written on the request's executor, never on the calling thread.
class Resume {
 public:
  // The rest of a waiting hook, run on the request's executor with the hook's own rules: it may
  // read and change the exchange and returns next(), respond() (after ex.answer(...)) or wait()
  // (after ex.defer(), to wait again). An exception goes to recover() as the hook's would. After
  // post_handle it may change the response; only wait() counts there. Never run for a request
  // that is gone.
  using Continuation = std::function<Decision(Exchange&)>;

  Resume() = default;
  Resume(Resume&& other) noexcept;
  Resume& operator=(Resume&& other) noexcept;
  Resume(const Resume&) = delete;
  Resume& operator=(const Resume&) = delete;
  ~Resume();

  // next() continues the chain. respond() ends it with the response the hook wrote before it
  // deferred; to write the answer now, use answer(), answer_error() or with().
  void operator()(Decision decision);
  // Runs `continuation` on the request's executor as the rest of the hook.
  void with(Continuation continuation);
  // Exchange::answer / answer_error on the request's executor, then the chain stops there
  // (post_handle still runs for the middlewares whose pre_handle ran).
  void answer(int status, std::string_view content_type, std::string body);
  void answer_error(int status, std::string_view error, std::string_view message);
  explicit operator bool() const { return host_ != nullptr; }

 private:
  friend class Exchange;
  Resume(std::shared_ptr<ExchangeHost> host, Exchange* exchange, std::uint64_t wait_id)
      : host_(std::move(host)), exchange_(exchange), wait_id_(wait_id) {}
  void fire(Decision decision, Continuation* continuation, bool abandoned);

  std::shared_ptr<ExchangeHost> host_;
  Exchange* exchange_ = nullptr;
  std::uint64_t wait_id_ = 0;
};

// Route facts that observers and middlewares may read.
struct RouteInfo {
  std::string name;
};

class Exchange {
 public:
  using DoneFn = std::function<void()>;

  // Made by a host (a server session, an adapter) over the messages it parsed; driven through
  // an ExchangeDriver.
  Exchange(ExchangeHost& host, Request request, Response response);
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  Context& context() { return context_; }
  const Context& context() const { return context_; }
  Request& request() { return request_; }
  const Request& request() const { return request_; }
  Response& response() { return response_; }
  const Response& response() const { return response_; }

  const RouteInfo* route() const { return route_; }

  // Answers now: fills the response and returns Decision::respond().
  Decision answer(int status, std::string_view content_type, std::string body);
  // Answers with a JSON error body {"error":..., "message":..., "request_id":...} and records
  // `error` as the stable detail of why the request was answered ("rate_limited").
  Decision answer_error(int status, std::string_view error, std::string_view message);

  // The stable reason a middleware answered early or a fault was injected; for logs.
  std::string_view detail() const { return detail_; }
  void set_detail(std::string_view detail) { detail_.assign(detail); }
  // The middleware that answered early (pre_handle returned respond), or empty.
  std::string_view answered_by() const;

  // Starts a wait: the hook returns Decision::wait() (pre_handle, handler) or simply returns
  // (post_handle); the chain continues when the Resume is called.
  Resume defer();
  // Runs `fn` on the request's executor, soon or after `delay` (a timer). It may run after the
  // request finished: touch the exchange only through a Resume, which checks.
  void post(std::function<void()> fn);
  void post_after(std::chrono::nanoseconds delay, std::function<void()> fn);

  // Cancellation: the client went away. Registered callbacks run once (e.g. abort an upstream
  // call); a pending Resume is then ignored.
  bool cancelled() const { return cancelled_; }
  void on_cancel(std::function<void()> fn) { cancel_callbacks_.push_back(std::move(fn)); }

  // Self time of the i-th active middleware (pre + post), when an observer asked for it.
  std::chrono::nanoseconds middleware_time(std::size_t i) const {
    return i < times_.size() ? times_[i] : std::chrono::nanoseconds{0};
  }
  const ChainSnapshot* chain() const { return chain_; }
  // When the response became final: read once by the runner before the observers'
  // on_request_end, so every observer measures the same latency without its own clock read.
  SteadyTime finished_at() const { return finished_at_; }
  // "Now" on `clock` for the running pre_handle, handler or post_handle: the time the runner
  // read when that hook started, when it times hooks (an observer asked for middleware times)
  // on this same clock; otherwise `clock.now()`. A hook that needs "now" once, near its start
  // (a deadline, a limiter's refill, a breaker's response time), takes it from here instead of
  // reading the clock again (≈ 24 ns a read). The shared value is earlier than a fresh read by
  // the hook's own work before the call, at most the hook's self time (middleware_time). After
  // the hook waited (defer), in a Resume continuation or in recover(), it reads `clock`.
  SteadyTime hook_time(const Clock& clock) const;
  std::exception_ptr error() const { return error_; }
  std::string_view upstream() const { return upstream_; }
  void set_upstream(std::string_view name, std::chrono::nanoseconds latency) {
    upstream_.assign(name);
    upstream_latency_ = latency;
  }
  std::chrono::nanoseconds upstream_latency() const { return upstream_latency_; }
  std::size_t bytes_in() const { return bytes_in_; }
  // The response body's size: the buffered body's, or a stream's declared length (0 if unknown).
  std::uint64_t bytes_out() const;

  // Streamed bodies (sluice/body_stream.hpp). A request body larger than the server buffers
  // arrives as a stream (request().body() is then empty); nullptr when the body was buffered.
  const std::shared_ptr<BodyStream>& request_body_stream() const { return request_stream_; }
  // A handler answers with a streamed body: the response's headers are final, the body comes
  // from the stream (response().body() is ignored). answer()/answer_error() drop it.
  void set_response_body_stream(std::shared_ptr<BodyStream> stream) {
    response_stream_ = std::move(stream);
  }
  const std::shared_ptr<BodyStream>& response_body_stream() const { return response_stream_; }
  // An upgrade request (`Connection: upgrade` + `Upgrade`, no body) on a server that can switch
  // protocols: the raw bytes the client sends after its request. A handler that answers 101 with
  // a response body stream turns the connection into a tunnel: the stream's bytes go to the
  // client as they are, and this stream gives the client's, until either side closes.
  const std::shared_ptr<BodyStream>& upgrade_stream() const { return upgrade_stream_; }

 private:
  friend class Resume;
  friend class ExchangeDriver;
  enum class Phase : unsigned char { kIdle, kPre, kHandler, kPost, kDone };

  void advance();
  void advance_steps();
  void step_pre();
  void step_handler();
  void step_post();
  void after_pre_decision(Decision d);
  void handle_exception(std::exception_ptr error, std::size_t entered);
  void resume_with(std::uint64_t wait_id, Decision d, bool abandoned);
  void continue_with(std::uint64_t wait_id, const Resume::Continuation& continuation);
  void after_wait(Decision d);
  void charge(std::size_t index, SteadyTime since);
  SteadyTime read_clock() const;
  void finish();
  // The host's side, through ExchangeDriver.
  void reset(SteadyTime steady_now, std::chrono::system_clock::time_point wall_now,
             std::string_view connection_ip);
  void run(const ChainSnapshot& chain, Handler& handler, DoneFn done);
  void cancel();
  bool running() const { return phase_ != Phase::kIdle; }

  ExchangeHost* host_;
  Request request_;
  Response response_;
  Context context_;
  const RouteInfo* route_ = nullptr;
  const ChainSnapshot* chain_ = nullptr;
  Handler* handler_ = nullptr;
  DoneFn done_;
  Phase phase_ = Phase::kIdle;
  std::size_t next_ = 0;       // next middleware whose pre_handle runs
  std::size_t entered_ = 0;    // how many pre_handles ran
  std::size_t post_next_ = 0;  // post_handle runs for indices below this, downwards
  std::ptrdiff_t answered_by_ = -1;
  bool waiting_ = false;
  bool advancing_ = false;  // the state machine is on the stack: a Resume must post
  bool cancelled_ = false;
  bool timing_ = false;
  std::uint64_t wait_id_ = 0;
  const Clock* clock_ = nullptr;  // the host's; nullptr: the real steady clock, read inline
  bool hook_time_valid_ = false;  // hook_started_ is the running hook's start (hook_time)
  SteadyTime hook_started_{};
  SteadyTime finished_at_{};
  bool have_end_ = false;  // finished_at_ already holds the post phase's last clock read
  std::vector<std::chrono::nanoseconds> times_;
  std::vector<std::function<void()>> cancel_callbacks_;
  std::exception_ptr error_;
  std::string detail_;
  std::string upstream_;
  std::chrono::nanoseconds upstream_latency_{0};
  std::size_t bytes_in_ = 0;
  std::shared_ptr<BodyStream> request_stream_;
  std::shared_ptr<BodyStream> response_stream_;
  std::shared_ptr<BodyStream> upgrade_stream_;
};

}  // namespace sluice
