#include "middleware/fallback/fallback_middleware.hpp"

#include <prometheus/counter.h>

#include <algorithm>
#include <cctype>

#include "middleware/fallback/fallback_call.hpp"
#include "server/worker_pool.hpp"
#include "sluice/instance_state.hpp"

namespace sluice::middleware {

using fallback_detail::FallbackCall;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Not replayed from a snapshot: framing is the server's, and per-request headers are not the
// snapshot's to repeat.
bool replayable(std::string_view header) {
  for (std::string_view skip :
       {"Content-Length", "Transfer-Encoding", "Connection", "Date", "Age", "X-Request-Id",
        "Set-Cookie", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
        "RateLimit-Policy", "Retry-After", "traceparent", "tracestate"})
    if (iequals(header, skip)) return false;
  return true;
}
}  // namespace

// An upstream fallback in flight. Everything here runs on the request's worker thread: the
// shadow call completes on that worker's io_context, and on_cancel runs there too.
struct FallbackMiddleware::Attempt {
  Resume resume;
  std::size_t index = 0;
  RuleContext ctx;
  bool cancelled = false;
  std::function<void()> cancel;  // aborts the shadow call in flight
};

FallbackMiddleware::FallbackMiddleware(std::string name, FallbackConfig config,
                                       std::shared_ptr<observe::LatencyEstimator> latency,
                                       const Clock& clock, ClusterBinder binder)
    : name_(std::move(name)),
      config_(std::move(config)),
      cache_(std::make_shared<resilience::ResponseCache>(config_.snapshots.max_bytes,
                                                         config_.snapshots.ttl)),
      latency_(std::move(latency)),
      clock_(clock),
      binder_(std::move(binder)) {
  for (const auto& f : config_.fallbacks) {
    uses_snapshots_ |= f.kind == FallbackSpec::Kind::kCacheSnapshot;
    uses_p99_ |= f.when.uses_route_p99();
    uses_queue_ |= f.kind == FallbackSpec::Kind::kQueue;
    uses_upstream_ |= f.kind == FallbackSpec::Kind::kUpstream;
    has_before_handler_ |= f.when.before_handler();
    if (!f.cluster.empty()) clusters_.push_back(f.cluster);
  }
  if (config_.hedge.enabled) clusters_.push_back(config_.hedge.cluster);
}

InitResult FallbackMiddleware::bind_config(const ConfigBuild& build) {
  if (clusters_.empty() || !binder_) return InitResult::success();
  ClusterPicker picker;
  std::string error = binder_(build, clusters_, picker);
  if (!error.empty()) return InitResult::failure(name_ + ": " + error);
  if (!picker) return InitResult::success();
  {
    std::lock_guard lock(picker_mutex_);
    picker_ = std::make_shared<const ClusterPicker>(std::move(picker));
  }
  if (uses_queue_) bind_queues(build);
  return InitResult::success();
}

Decision FallbackMiddleware::pre_handle(Exchange& ex) {
  auto& call = InstanceState<FallbackCall>::emplace(ex.context(), this);
  call.started = clock_.now();
  if (has_before_handler_ && serve_before_handler(ex)) {
    call.served = true;  // not an outcome of the route: no latency sample, no snapshot
    return Decision::respond();
  }
  if (uses_queue_) prepare_queue(ex);
  if (uses_upstream_ && !ex.request_body_stream() && !ex.request().body().empty()) {
    call.body = ex.request().body();  // a copy: see FallbackCall::body
    call.kept_body = true;
  }
  if (config_.hedge.enabled && start_hedge(ex)) {
    call.hedged = true;
    return Decision::wait();
  }
  return Decision::next();
}

std::string FallbackMiddleware::cache_key(const Exchange& ex) const {
  std::string key(ex.request().method());
  key += ' ';
  if (ex.route() != nullptr) key += ex.route()->name;
  key += ' ';
  key += ex.request().target();
  for (const auto& h : config_.snapshots.key_headers) {
    key += '\n';
    key += h;
    key += '=';
    key += ex.request().header(h);
  }
  return key;
}

void FallbackMiddleware::mark(Exchange& ex, const FallbackSpec& f) {
  ex.response().set_header("X-Sluice-Fallback", f.name);
  std::string detail(ex.detail());
  prometheus::Counter* counter = detail == "hedged" ? f.hedged : f.served;
  ex.set_detail(detail.empty() ? "fallback:" + f.name : detail + ",fallback:" + f.name);
  if (counter != nullptr) counter->Increment();
}

bool FallbackMiddleware::serve_snapshot(Exchange& ex) {
  auto hit = cache_->get(cache_key(ex), clock_.now());
  if (!hit) return false;
  const auto& e = *hit->entry;
  Response& r = ex.response();
  r.clear();
  r.set_status(e.status);
  std::string content_type;
  for (const auto& [name, value] : e.headers) {
    if (iequals(name, "Content-Type"))
      content_type = value;
    else
      r.add_header(name, value);
  }
  r.set_body(e.body, content_type);
  r.set_header("Age",
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(hit->age).count()));
  return true;
}

void FallbackMiddleware::serve_static(Exchange& ex, const FallbackSpec& f) {
  ex.answer(f.status, f.content_type, f.body);
  for (const auto& [name, value] : f.headers)
    ex.response().set_header(name, value);
}

RuleContext FallbackMiddleware::rule_context() {
  RuleContext ctx;
  if (uses_p99_ && latency_) ctx.route_p99 = latency_->quantile(clock_.now(), 0.99);
  return ctx;
}

bool FallbackMiddleware::serve_before_handler(Exchange& ex) {
  const RuleContext ctx = rule_context();
  for (const auto& f : config_.fallbacks) {
    if (!f.when.before_handler() || !f.when.matches(ex, ctx)) continue;
    if (f.kind == FallbackSpec::Kind::kStatic) {
      serve_static(ex, f);
    } else if (f.kind == FallbackSpec::Kind::kCacheSnapshot) {
      if (!serve_snapshot(ex)) {  // nothing stored yet: the next one, or the handler
        if (f.failed != nullptr) f.failed->Increment();
        continue;
      }
    } else {
      continue;  // the config allows before_handler only for the kinds above
    }
    mark(ex, f);
    return true;
  }
  return false;
}

FallbackMiddleware::Outcome FallbackMiddleware::run_from(Exchange& ex, std::size_t start,
                                                         const RuleContext& ctx,
                                                         std::shared_ptr<Attempt> attempt,
                                                         bool allow_async) {
  for (std::size_t i = start; i < config_.fallbacks.size(); ++i) {
    const auto& f = config_.fallbacks[i];
    if (f.when.before_handler() || !f.when.matches(ex, ctx)) continue;  // those ran in pre_handle
    if (f.kind == FallbackSpec::Kind::kStatic) {
      serve_static(ex, f);
    } else if (f.kind == FallbackSpec::Kind::kQueue) {
      const Outcome o = serve_queue(ex, f, allow_async, attempt ? &attempt->resume : nullptr);
      if (o == Outcome::kWaiting) return o;  // the storage's answer marks it
      if (o == Outcome::kNone) {
        if (f.failed != nullptr) f.failed->Increment();
        continue;
      }
    } else if (f.kind == FallbackSpec::Kind::kCacheSnapshot) {
      if (!serve_snapshot(ex)) {
        if (f.failed != nullptr) f.failed->Increment();
        continue;
      }
    } else {
      if (!allow_async) return Outcome::kNone;
      boost::asio::io_context* io = server::current_io_context();
      upstream::DetachedTarget to = f.endpoint;
      if (!f.cluster.empty()) to = pick(f.cluster);
      // Off a server worker, no endpoint to call, or a streamed request body (its pieces went to
      // the primary upstream and cannot be sent again).
      if (io == nullptr || to.host.empty() || ex.request_body_stream()) {
        if (f.failed != nullptr) f.failed->Increment();
        continue;
      }
      if (!attempt) {
        attempt = std::make_shared<Attempt>();
        attempt->resume = ex.defer();
        ex.on_cancel([attempt] {
          attempt->cancelled = true;
          if (attempt->cancel) attempt->cancel();
        });
      }
      attempt->index = i;
      attempt->ctx = ctx;
      // The body the client sent (the proxy took the request's own); the same for a second
      // upstream fallback after a first one failed.
      if (auto* call = InstanceState<FallbackCall>::find(ex.context(), this);
          call != nullptr && call->kept_body)
        ex.request().body() = call->body;
      attempt->cancel = upstream::start_detached_copy(
          *io, to, ex.request(), f.timeout, [this, &ex, attempt](upstream::DetachedResult r) {
            on_shadow(ex, attempt, std::move(r));
          });
      return Outcome::kWaiting;
    }
    mark(ex, f);
    return Outcome::kServed;
  }
  return Outcome::kNone;
}

void FallbackMiddleware::on_shadow(Exchange& ex, const std::shared_ptr<Attempt>& attempt,
                                   upstream::DetachedResult result) {
  if (attempt->cancelled) return;  // the request is gone: touch nothing of it
  attempt->cancel = nullptr;
  const auto& f = config_.fallbacks[attempt->index];
  if (result.ok && result.status < 500) {
    Response& r = ex.response();
    r.clear();
    r.set_status(result.status);
    for (const auto& [name, value] : result.headers)
      r.add_header(name, value);
    r.body() = std::move(result.body);  // with the shadow's Content-Type, if it sent one
    mark(ex, f);
    attempt->resume(Decision::next());
    return;
  }
  prometheus::Counter* c = result.timed_out ? f.timed_out : f.failed;
  if (c != nullptr) c->Increment();
  if (run_from(ex, attempt->index + 1, attempt->ctx, attempt, true) != Outcome::kWaiting)
    attempt->resume(Decision::next());
}

void FallbackMiddleware::maybe_store(Exchange& ex) {
  const Response& r = ex.response();
  if (r.status() < 200 || r.status() > 299 || ex.error() != nullptr) return;
  if (ex.response_body_stream()) return;  // a streamed body passes through, it is not held
  const auto& methods = config_.snapshots.methods;
  if (std::find(methods.begin(), methods.end(), ex.request().method()) == methods.end()) return;
  resilience::CachedEntry entry;
  entry.status = r.status();
  r.visit_headers([&](std::string_view name, std::string_view value) {
    if (replayable(name)) entry.headers.emplace_back(name, value);
  });
  entry.body = r.body();
  entry.stored_at = clock_.now();
  cache_->put(cache_key(ex), std::move(entry));
}

void FallbackMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  auto* call = InstanceState<FallbackCall>::find(ex.context(), this);
  if (call == nullptr || call->served || ex.cancelled()) return;
  const SteadyTime now = clock_.now();
  const RuleContext ctx = rule_context();  // before this request's own latency counts
  if (latency_ && !call->hedged) latency_->record(now, now - call->started);
  if (run_from(ex, 0, ctx, nullptr, true) != Outcome::kNone) return;
  if (uses_snapshots_) maybe_store(ex);
}

bool FallbackMiddleware::recover(Exchange& ex, const std::exception_ptr&) {
  auto* call = InstanceState<FallbackCall>::find(ex.context(), this);
  if (call == nullptr || run_from(ex, 0, rule_context(), nullptr, false) != Outcome::kServed)
    return false;
  call->served = true;
  return true;
}

}  // namespace sluice::middleware
