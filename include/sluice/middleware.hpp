// sluice::Middleware — the contract every middleware implements, and sluice::Decision, the
// value pre_handle returns to say what happens next.
//
//   class Hello : public sluice::Middleware {
//     std::string_view name() const override { return "hello"; }
//     sluice::Decision pre_handle(sluice::Exchange& ex) override {
//       if (ex.request().path() == "/hi") return ex.answer(200, "text/plain", "hi\n");
//       return sluice::Decision::next();
//     }
//   };
//
// Three lifetimes, and where each kind of state lives:
//
// - Per config item: the Middleware object. It is built once from one config item (a YAML
//   middleware entry, or your own code), shared by every request on every worker, kept by a
//   reload that leaves its item unchanged, and destroyed after the last request on a chain
//   snapshot that holds it. Its settings are read-only after construction; what requests
//   change in it (counters, buckets, breakers) is thread-safe.
// - Per request: the request's Context (ex.context()), in typed slots keyed by a private type of
//   the middleware (InstanceState<T> in src/middleware/ keys them by instance too, for two
//   instances in one chain). Written on the request's worker only (a Resume comes back there),
//   reset when the request ends.
// - Per process: state shared by several config items or kept across reloads (a breaker
//   registry, a limiter group, a Redis connection): typed slots the host owns for as long as it
//   runs (GatewayServices::shared in the gateway), reached from the factory; never a static.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <string_view>

namespace sluice {

class Exchange;
struct ConfigBuild;  // sluice/services.hpp

// What happens after a hook. The returned value is the only way to stop the chain.
class Decision {
 public:
  enum class Kind : unsigned char {
    kNext,     // continue with the next middleware (or the handler)
    kRespond,  // the response in the exchange is the answer: skip the rest and the handler
    kWait,     // the hook called Exchange::defer(); the chain resumes when that Resume is called
  };
  static constexpr Decision next() { return Decision(Kind::kNext); }
  static constexpr Decision respond() { return Decision(Kind::kRespond); }
  static constexpr Decision wait() { return Decision(Kind::kWait); }
  constexpr Kind kind() const { return kind_; }
  constexpr bool operator==(const Decision&) const = default;

 private:
  constexpr explicit Decision(Kind k) : kind_(k) {}
  Kind kind_;
};

// The outcome of init(): empty message means success.
struct InitResult {
  std::string error;
  bool ok() const { return error.empty(); }
  static InitResult success() { return {}; }
  static InitResult failure(std::string message) { return {std::move(message)}; }
};

class Middleware {
 public:
  virtual ~Middleware() = default;

  // The instance name: the label of this middleware's metrics, spans and log fields.
  virtual std::string_view name() const = 0;
  // The registered type name ("rate_limit"); defaults to the name.
  virtual std::string_view type() const { return name(); }

  // Called once per chain build that includes this middleware, before any request reaches it.
  // A failure refuses the whole build (config load, reload or chain edit) with the message.
  virtual InitResult init() { return InitResult::success(); }

  // Called at each config load that builds or keeps this middleware, before init(), with what
  // that load built (ConfigBuild::extras: upstream clusters, ...). A middleware kept across a
  // reload re-binds here what it took from the previous load. Not called on chain edits.
  virtual InitResult bind_config(const ConfigBuild& build) {
    (void)build;
    return InitResult::success();
  }

  // Before the handler, in chain order. Return next() to continue, respond() (usually through
  // ex.answer(...)) to answer now, or wait() after ex.defer() to continue later without
  // blocking the worker.
  virtual Decision pre_handle(Exchange& ex) = 0;

  // Instead of pre_handle, when this middleware steps aside for a request (a `guard:` whose
  // breaker is open with on_open: skip, a `rollout:` that leaves the request out). It cannot
  // answer, and no other hook of this middleware runs for the request. For what must hold even
  // then: an authentication middleware removes client-sent identity headers here.
  virtual void on_skipped(Exchange& /*ex*/) {}

  // After the handler (or an early answer), in reverse order, for exactly the middlewares whose
  // pre_handle ran. `elapsed` is the time since the request entered the chain. May change the
  // response; may call ex.defer() to wait (the chain resumes on the Resume).
  virtual void post_handle(Exchange& /*ex*/, std::chrono::nanoseconds /*elapsed*/) {}

  // Sees an exception thrown by this middleware's or an inner middleware's pre_handle, by the
  // handler, or by an inner post_handle; innermost first. Return true after writing an answer
  // into ex.response() to stop the search; false passes it on. If nobody answers, the client
  // gets a 500 with a JSON body and the error is logged.
  virtual bool recover(Exchange& /*ex*/, const std::exception_ptr& /*error*/) { return false; }

  // For the runner: false when this middleware's pre_handle (post_handle) does nothing for any
  // request, so the chain does not call it, nor read the clock for its time. Skipping pre_handle
  // still counts as entering: post_handle runs as it would have.
  bool calls_pre_handle() const { return calls_pre_; }
  bool calls_post_handle() const { return calls_post_; }

 protected:
  // Called by a middleware (in its constructor) whose hook never does anything with the
  // settings it was built with, e.g. a headers middleware that edits responses only: ten hooks
  // with per-middleware timing cost ≈ 50 instructions each, most of a cheap hook's cost.
  // At most one of the two: a middleware that does nothing at all is a configuration error.
  void skip_hooks(bool skip_pre, bool skip_post) {
    calls_pre_ = !skip_pre;
    calls_post_ = !skip_post || skip_pre;
  }

 private:
  bool calls_pre_ = true;
  bool calls_post_ = true;
};

// The end of a chain: makes the response. Same waiting rules as pre_handle; return respond()
// when the response is ready.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual std::string_view kind() const = 0;
  virtual Decision handle(Exchange& ex) = 0;
};

// Sees every request that runs through a chain, whatever its outcome (early answers,
// exceptions, cancellations): metrics, tracing and access logs are observers.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_request_start(Exchange& /*ex*/) {}
  // The response is final (not yet written).
  virtual void on_request_end(Exchange& /*ex*/) {}
  // True when the runner should time each middleware (Exchange::middleware_time).
  virtual bool wants_middleware_times() const { return false; }
};

}  // namespace sluice
