// The fallback middleware's hedge: answer within a latency budget while the upstream call goes on
// (see HedgeSettings in fallback_middleware.hpp).
//
//   pre_handle --start_hedge--> shadow call to the cluster + a timer at the budget
//     answer first:  the client gets the upstream's answer (the handler is skipped)
//     budget first:  detail "hedged"; the matching fallback answers now; the call goes on and a
//                    late 2xx refreshes the snapshot (the request, and even this middleware after
//                    a reload, may be gone by then: the call holds only shared state)
//     client gone:   the call still goes on and refreshes the snapshot
#include <prometheus/counter.h>

#include "middleware/fallback/fallback_call.hpp"
#include "middleware/fallback/fallback_middleware.hpp"
#include "server/worker_pool.hpp"
#include "sluice/instance_state.hpp"

namespace sluice::middleware {

using fallback_detail::FallbackCall;

// Runs on the request's worker only: the shadow call completes on that worker's io_context and
// the budget timer is the exchange host's.
struct FallbackMiddleware::Hedge {
  Resume resume;
  std::string key;  // the snapshot key
  SteadyTime started{};
  bool answered = false;     // the client has its answer (upstream, or a fallback at the budget)
  bool client_gone = false;  // cancelled: touch nothing of the request
};

upstream::DetachedTarget FallbackMiddleware::pick(const std::string& cluster) {
  std::shared_ptr<const ClusterPicker> picker;
  {
    std::lock_guard lock(picker_mutex_);
    picker = picker_;
  }
  return picker ? (*picker)(cluster) : upstream::DetachedTarget{};
}

std::chrono::nanoseconds FallbackMiddleware::hedge_budget() {
  const auto& h = config_.hedge;
  if (h.p99_multiple <= 0 || !h.answered_latency) return h.after;
  // recent_p99() is the estimator's cached quantile (recomputed at most every refresh period):
  // summing every bucket per request would cost more than the request.
  const auto p99 = h.answered_latency->recent_p99(clock_.now());
  auto budget = std::chrono::duration_cast<std::chrono::nanoseconds>(p99 * h.p99_multiple);
  budget = std::max<std::chrono::nanoseconds>(h.floor, budget);
  return std::min<std::chrono::nanoseconds>(h.ceiling.count() > 0 ? h.ceiling : h.timeout, budget);
}

bool FallbackMiddleware::start_hedge(Exchange& ex) {
  const auto& h = config_.hedge;
  const auto& methods = config_.snapshots.methods;
  const std::string_view method = ex.request().method();
  // Only what a snapshot can answer is hedged, and never a streamed body (it goes up once).
  if (method != "GET" && method != "HEAD") return false;
  if (std::find(methods.begin(), methods.end(), method) == methods.end()) return false;
  if (ex.request_body_stream()) return false;
  boost::asio::io_context* io = server::current_io_context();
  if (io == nullptr) return false;
  if (background_->load(std::memory_order_relaxed) >= h.max_background) {
    if (h.over_cap != nullptr) h.over_cap->Increment();
    return false;
  }
  upstream::DetachedTarget to = pick(h.cluster);
  if (to.host.empty()) return false;  // no endpoint: the handler answers (502) as usual

  auto hedge = std::make_shared<Hedge>();
  hedge->resume = ex.defer();
  hedge->key = cache_key(ex);
  hedge->started = clock_.now();
  background_->fetch_add(1, std::memory_order_relaxed);
  ex.on_cancel([hedge] { hedge->client_gone = true; });  // the call goes on: it refreshes

  auto done = [this, &ex, hedge, cache = cache_, latency = latency_, background = background_,
               clock = &clock_, refreshed = h.refreshed,
               answered_latency = h.answered_latency](upstream::DetachedResult r) {
    background->fetch_sub(1, std::memory_order_relaxed);
    const SteadyTime now = clock->now();
    if (r.ok && r.status < 500) {
      if (latency) latency->record(now, now - hedge->started);  // the route's (route_p99 rules)
      // The budget's samples: only calls that answered their request (see HedgeSettings).
      if (answered_latency && !hedge->answered) answered_latency->record(now, now - hedge->started);
    }
    if (!hedge->answered && !hedge->client_gone) {
      // Within the budget: this is the request's answer; post_handle stores the snapshot and
      // runs the failure fallbacks if it is a 5xx. `this` and `ex` are alive: the request waits.
      hedge->answered = true;
      Response& resp = ex.response();
      if (r.ok) {
        resp.clear();
        resp.set_status(r.status);
        for (const auto& [name, value] : r.headers)
          resp.add_header(name, value);
        resp.body() = std::move(r.body);
        ex.set_upstream(config_.hedge.cluster, now - hedge->started);
      } else if (r.timed_out) {
        ex.answer_error(504, "upstream_timeout", "the upstream did not answer in time");
      } else {
        ex.answer_error(502, "upstream_unreachable", r.error);
      }
      hedge->resume(Decision::respond());
      return;
    }
    // After the budget answered (or the client left): a late 2xx becomes the snapshot.
    if (!r.ok || r.status < 200 || r.status > 299) return;
    resilience::CachedEntry entry;
    entry.status = r.status;
    entry.headers = std::move(r.headers);
    entry.body = std::move(r.body);
    entry.stored_at = now;
    cache->put(hedge->key, std::move(entry));
    if (refreshed != nullptr) refreshed->Increment();
  };
  upstream::start_detached_copy(*io, to, ex.request(), h.timeout, std::move(done));
  ex.post_after(hedge_budget(), [this, &ex, hedge] { on_hedge_budget(ex, hedge); });
  return true;
}

void FallbackMiddleware::on_hedge_budget(Exchange& ex, const std::shared_ptr<Hedge>& hedge) {
  if (hedge->answered || hedge->client_gone) return;  // nothing of the request may be touched
  ex.set_detail("hedged");
  if (run_from(ex, 0, rule_context(), nullptr, /*allow_async=*/false) != Outcome::kServed) {
    ex.set_detail("");  // nothing to answer with (no snapshot yet): wait for the upstream
    return;
  }
  hedge->answered = true;
  if (auto* call = InstanceState<FallbackCall>::find(ex.context(), this)) call->served = true;
  hedge->resume(Decision::respond());
}

}  // namespace sluice::middleware
