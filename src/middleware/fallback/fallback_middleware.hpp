// fallback — when a request failed (or matched a rule), answers from an ordered list of
// fallbacks instead: the last good response for the same request (cache_snapshot) or a fixed
// answer (static) or an alternate upstream (upstream, asynchronous, bounded by timeout_ms), or
// for a write, a durable queue that replays it once the cluster is back (queue; see
// fallback_queue.hpp).
// The first fallback whose `when:` matches is tried; if it cannot answer
// (no snapshot), the next matching one is. Put it FIRST in the chain (outside the breaker and
// the limiters) so its post_handle sees their rejections. Answers carry X-Sluice-Fallback.
// Fallbacks whose rule says `before_handler: true` are tried in pre_handle instead, on the
// route's p99 and the user's tier: the seed's P0, a slow route short-circuited for VIPs.
//
//   - type: fallback
//     fallbacks:
//       - { name: snapshot, kind: cache_snapshot, when: { status: [5xx] } }
//       - { name: sorry, kind: static, status: 503, body: "try later", when: {} }
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "middleware/fallback/fallback_rule.hpp"
#include "observe/latency_estimator.hpp"
#include "resilience/response_cache.hpp"
#include "sluice/exchange.hpp"
#include "upstream/detached_call.hpp"

namespace prometheus {
class Counter;
}

namespace sluice::middleware {

struct QueueFallback;  // fallback_queue.hpp

struct FallbackSpec {
  enum class Kind { kCacheSnapshot, kStatic, kUpstream, kQueue };
  std::string name;
  FallbackRule when;
  Kind kind = Kind::kStatic;
  // Bounds how long an upstream fallback may take to answer. cache_snapshot and static answer
  // from memory at once: the config refuses timeout_ms for them.
  std::chrono::milliseconds timeout{100};
  int status = 200;  // static
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  upstream::DetachedTarget endpoint;  // upstream: a fixed address, or
  std::string cluster;  // upstream: a cluster of `upstreams:` (an endpoint its balancer picks)
  std::shared_ptr<QueueFallback> queue;  // queue (the cluster it replays to: `cluster`)
  // sluice_fallback_total{fallback,result}; may be null.
  prometheus::Counter* served = nullptr;
  prometheus::Counter* failed = nullptr;
  prometheus::Counter* timed_out = nullptr;
  prometheus::Counter* hedged = nullptr;  // answered at the hedge's budget
};

struct SnapshotSettings {
  std::size_t max_bytes = 16 << 20;
  std::chrono::milliseconds ttl{60'000};
  std::vector<std::string> key_headers;             // part of the cache key
  std::vector<std::string> methods{"GET", "HEAD"};  // responses stored for these
};

// Answering on a latency budget (a hedged fallback): a GET/HEAD is sent to `cluster` by the
// middleware itself; if no answer came within the budget, the fallbacks whose `when:` matches
// detail "hedged" answer the client at once while the call goes on, bounded by `timeout`, and a
// late 2xx refreshes the snapshot. The budget is `after`, or p99_multiple x the recent p99 of
// the hedged calls that answered their request, kept within [floor, ceiling], when
// p99_multiple > 0. A call cut short by the budget is not a sample: its latency is what a grey
// failure looks like, and counting it would raise the budget to the slow answers it must bound.
// At most `max_background` such calls at once (per middleware); beyond, requests take the
// handler's way.
struct HedgeSettings {
  bool enabled = false;
  std::string cluster;
  std::chrono::milliseconds after{0};
  double p99_multiple = 0;
  std::chrono::milliseconds floor{10};
  std::chrono::milliseconds ceiling{0};  // 0: the call's timeout
  std::chrono::milliseconds timeout{5000};
  int max_background = 64;
  // sluice_fallback_total{fallback="<middleware>:hedge", result=refreshed|over_cap}; may be null.
  prometheus::Counter* refreshed = nullptr;
  prometheus::Counter* over_cap = nullptr;
  // With p99_multiple: the latency of hedged calls that answered their request (shared by the
  // route's hedges, kept across reloads); null otherwise.
  std::shared_ptr<observe::LatencyEstimator> answered_latency;
};

struct FallbackConfig {
  std::vector<FallbackSpec> fallbacks;
  SnapshotSettings snapshots;
  HedgeSettings hedge;
};

// Finds a cluster's endpoint for an upstream fallback; empty host when none is available.
// Re-bound on every config load (FallbackMiddleware::init) so a reused middleware follows the
// current `upstreams:`.
using ClusterPicker = std::function<upstream::DetachedTarget(const std::string& cluster)>;
// Returns a picker for the config being loaded, or an error message naming a missing cluster.
using ClusterBinder = std::function<std::string(
    const ConfigBuild& build, const std::vector<std::string>& clusters, ClusterPicker& out)>;

class FallbackMiddleware final : public Middleware {
 public:
  // `latency` is the route's shared estimator (recorded here, read by route_p99_above_ms).
  FallbackMiddleware(std::string name, FallbackConfig config,
                     std::shared_ptr<observe::LatencyEstimator> latency, const Clock& clock,
                     ClusterBinder binder = {});

  // Binds the clusters of upstream fallbacks to the config being loaded (when one is).
  InitResult bind_config(const ConfigBuild& build) override;
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "fallback"; }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;
  bool recover(Exchange& ex, const std::exception_ptr& error) override;

  const resilience::ResponseCache& snapshots() const { return *cache_; }
  int background_calls() const { return background_->load(); }

 private:
  struct Attempt;
  struct Hedge;
  // Starts the hedged call of a request; false when it is not hedged (then: the handler).
  bool start_hedge(Exchange& ex);
  void on_hedge_budget(Exchange& ex, const std::shared_ptr<Hedge>& hedge);
  std::chrono::nanoseconds hedge_budget();
  upstream::DetachedTarget pick(const std::string& cluster);
  enum class Outcome { kNone, kServed, kWaiting };
  // Tries the matching fallbacks in order from `start`. An upstream fallback makes the request
  // wait (kWaiting; `attempt` carries the wait on); with allow_async false it stops the search
  // instead (recover() cannot wait).
  Outcome run_from(Exchange& ex, std::size_t start, const RuleContext& ctx,
                   std::shared_ptr<Attempt> attempt, bool allow_async);
  void on_shadow(Exchange& ex, const std::shared_ptr<Attempt>& attempt,
                 upstream::DetachedResult result);
  RuleContext rule_context();
  // The before_handler fallbacks: true when one answered (the handler is skipped).
  bool serve_before_handler(Exchange& ex);
  bool serve_snapshot(Exchange& ex);
  void serve_static(Exchange& ex, const FallbackSpec& f);
  // fallback_queue.cpp: stores a write and answers 202 (or 503 when the queue cannot take it);
  // kNone when the request is not the queue's (its method, a body over the limit or streamed).
  // A storage that answers later (redis) makes the request wait (kWaiting): on `deferred` when
  // the request already waits, else on a new ex.defer(); never with allow_async false.
  Outcome serve_queue(Exchange& ex, const FallbackSpec& f, bool allow_async, Resume* deferred);
  // For a write the queue may take: the replays' Idempotency-Key on the first try too, and a copy
  // of the body (the proxy moves it into the upstream request).
  void prepare_queue(Exchange& ex);
  // Points each queue's replays at its cluster, and their records at the config's observers
  // that take them (the access log, tracing).
  void bind_queues(const ConfigBuild& build);
  void mark(Exchange& ex, const FallbackSpec& f);
  std::string cache_key(const Exchange& ex) const;
  void maybe_store(Exchange& ex);

  std::string name_;
  FallbackConfig config_;
  bool uses_snapshots_ = false;
  bool uses_p99_ = false;
  bool uses_queue_ = false;
  bool uses_upstream_ = false;  // an `upstream` kind: the request body is kept for it
  bool has_before_handler_ = false;
  // Shared with hedged calls that outlive their request (and this middleware, on a reload).
  std::shared_ptr<resilience::ResponseCache> cache_;
  std::shared_ptr<std::atomic<int>> background_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<observe::LatencyEstimator> latency_;
  const Clock& clock_;
  ClusterBinder binder_;
  std::vector<std::string> clusters_;  // named by upstream fallbacks
  std::mutex picker_mutex_;            // bind_config() may run while requests use the old picker
  std::shared_ptr<const ClusterPicker> picker_;
};

}  // namespace sluice::middleware
