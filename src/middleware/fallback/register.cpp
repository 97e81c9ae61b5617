#include <algorithm>
#include <map>
#include <mutex>

#include "middleware/fallback/fallback_middleware.hpp"
#include "middleware/fallback/fallback_queue.hpp"
#include "middleware/fallback/fallback_stats.hpp"
#include "sluice/extension/config_section.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"
#include "upstream/upstreams_section.hpp"

namespace sluice::middleware {
namespace {

// The recent latency of each route, shared by the fallback middlewares of that route and kept
// across reloads (GatewayServices::shared).
struct RouteLatencies {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<observe::LatencyEstimator>> by_route;
};

// `refresh`: how stale the estimator's cached quantiles may get (see LatencyEstimator).
std::shared_ptr<observe::LatencyEstimator> latency_for(
    GatewayServices* services, const std::string& route, std::chrono::milliseconds window,
    std::chrono::milliseconds refresh = std::chrono::milliseconds(500)) {
  if (services == nullptr) return std::make_shared<observe::LatencyEstimator>(window, refresh);
  auto& all = services->shared.get_or_emplace<RouteLatencies>();
  std::lock_guard lock(all.mu);
  auto& slot = all.by_route[route + "/" + std::to_string(window.count()) + "/" +
                            std::to_string(refresh.count())];
  if (!slot) slot = std::make_shared<observe::LatencyEstimator>(window, refresh);
  return slot;
}

const upstream::ClusterSet* clusters_of(const ConfigBuild* build) {
  return build != nullptr ? build->extras->get<upstream::ClusterSet>() : nullptr;
}

bool cluster_exists(const ConfigBuild* build, const std::string& name) {
  const auto* set = clusters_of(build);
  return set != nullptr && set->find(name) != nullptr;
}

// Binds upstream fallbacks to the clusters of the config being loaded: the picker holds those
// clusters and asks their balancer for an endpoint (ejected ones are skipped).
ClusterBinder binder_for() {
  return [](const ConfigBuild& build, const std::vector<std::string>& names,
            ClusterPicker& out) -> std::string {
    const auto* set = clusters_of(&build);
    if (set == nullptr) return "no `upstreams:` in this config";
    std::map<std::string, std::shared_ptr<upstream::Cluster>, std::less<>> bound;
    for (const auto& name : names) {
      auto cluster = set->find(name);
      if (!cluster) return "unknown cluster \"" + name + "\" (not in upstreams:)";
      bound[name] = cluster;
    }
    out = [bound = std::move(bound)](const std::string& name) -> upstream::DetachedTarget {
      auto it = bound.find(name);
      if (it == bound.end()) return {};
      auto& cluster = *it->second;
      const int i = cluster.pick(cluster.clock().now(), -1);
      if (i < 0) return {};
      const auto& address = cluster.endpoints()[static_cast<std::size_t>(i)]->address;
      return {address.address().to_string(), std::to_string(address.port()), it->second, i};
    };
    return {};
  };
}

void add_counters(prometheus::Registry* metrics, const std::string& route, FallbackSpec& f) {
  const FallbackStats s = fallback_stats(metrics, route, f.name);
  f.served = s.served;
  f.failed = s.failed;
  f.timed_out = s.timed_out;
  f.hedged = s.hedged;
}

HedgeSettings read_hedge(const Settings& h, const MiddlewareSpec& spec,
                         prometheus::Registry* metrics, std::chrono::milliseconds window) {
  HedgeSettings out;
  out.enabled = true;
  out.cluster = h.string("cluster");
  if (out.cluster.empty())
    h.error("cluster", "is required (the upstreams: cluster the hedged call goes to)");
  else if (!cluster_exists(spec.build, out.cluster))
    h.error("cluster", "unknown cluster \"" + out.cluster + "\" (not in upstreams:)");
  out.after = h.millis("after_ms", out.after);
  out.p99_multiple = h.number("p99_multiple", 0, 0, 100);
  out.floor = h.millis("floor_ms", out.floor);
  if (out.after.count() <= 0 && out.p99_multiple <= 0)
    h.error("", "give after_ms (a fixed budget) or p99_multiple (the route's p99 times this)");
  if (out.after.count() > 0 && out.p99_multiple > 0)
    h.error("p99_multiple", "give either after_ms or p99_multiple, not both");
  if (h.has("floor_ms") && out.p99_multiple <= 0) h.error("floor_ms", "only with p99_multiple");
  out.ceiling = h.millis("max_ms", out.ceiling);
  if (h.has("max_ms") && out.p99_multiple <= 0) h.error("max_ms", "only with p99_multiple");
  out.timeout = h.millis("timeout_ms", out.timeout);
  if (out.p99_multiple > 0 && out.ceiling.count() > 0 && out.ceiling < out.floor)
    h.error("max_ms", "must be at least floor_ms");
  if (out.p99_multiple > 0)
    // The hedge budget follows the answered calls' p99 within 100 ms: its budget can rise at
    // most × p99_multiple per refresh (docs/RESILIENCE.md), so the refresh sets that pace.
    out.answered_latency =
        latency_for(spec.services, spec.route + "#hedge", window, std::chrono::milliseconds(100));
  out.max_background =
      static_cast<int>(h.integer("max_background", out.max_background, 1, 100'000));
  const FallbackHedgeStats hedge = fallback_hedge_stats(metrics, spec.route, spec.name);
  out.refreshed = hedge.refreshed;
  out.over_cap = hedge.over_cap;
  return out;
}

std::shared_ptr<Middleware> build(const MiddlewareSpec& spec, Settings& s) {
  prometheus::Registry* metrics = spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
  FallbackConfig config;
  Settings snap = s.child("snapshots");
  config.snapshots.max_bytes =
      static_cast<std::size_t>(snap.integer("max_bytes", 16 << 20, 1024, std::int64_t{1} << 40));
  config.snapshots.ttl = snap.millis("ttl_ms", config.snapshots.ttl);
  config.snapshots.key_headers = snap.strings("key_headers");
  if (snap.has("methods")) config.snapshots.methods = snap.strings("methods");
  const auto window = s.millis("latency_window_ms", std::chrono::milliseconds(10'000));
  if (window.count() <= 0) s.error("latency_window_ms", "must be > 0");

  auto items = s.children("fallbacks");
  if (items.empty()) s.error("fallbacks", "at least one fallback is required");
  std::vector<std::string> names;
  for (std::size_t i = 0; i < items.size(); ++i) {
    Settings& item = items[i];
    FallbackSpec f;
    f.name = item.string("name", "fallback" + std::to_string(i));
    if (std::find(names.begin(), names.end(), f.name) != names.end())
      item.error("name", "duplicate fallback name \"" + f.name + "\"");
    names.push_back(f.name);
    if (!item.has("kind"))
      item.error("kind", "is required (cache_snapshot, static, upstream or queue)");
    const auto kind =
        item.choice("kind", {"cache_snapshot", "static", "upstream", "queue"}, "static");
    f.kind = kind == "cache_snapshot" ? FallbackSpec::Kind::kCacheSnapshot
             : kind == "upstream"     ? FallbackSpec::Kind::kUpstream
             : kind == "queue"        ? FallbackSpec::Kind::kQueue
                                      : FallbackSpec::Kind::kStatic;
    if (f.kind == FallbackSpec::Kind::kQueue) {
      read_queue_fallback(item, spec, f, metrics);
    } else if (item.has("queue")) {
      item.error("queue", "only for kind: queue");
    }
    if (f.kind == FallbackSpec::Kind::kUpstream) {
      f.cluster = item.string("cluster");
      const auto endpoint = item.string("endpoint");
      if (!f.cluster.empty() && !endpoint.empty()) {
        item.error("endpoint", "give either cluster or endpoint, not both");
      } else if (f.cluster.empty() && endpoint.empty()) {
        item.error("",
                   "kind: upstream needs cluster: <name of an upstreams: cluster> or "
                   "endpoint: \"host:port\"");
      } else if (!f.cluster.empty()) {
        if (!cluster_exists(spec.build, f.cluster))
          item.error("cluster", "unknown cluster \"" + f.cluster + "\" (not in upstreams:)");
      } else {
        // An implicit one-endpoint cluster, resolved now (upstream/detached_call.hpp).
        std::string error;
        f.endpoint = upstream::DetachedTarget::fixed(endpoint, clock, error);
        if (f.endpoint.empty()) item.error("endpoint", error);
      }
    }
    const Settings when = item.child("when");
    f.when = FallbackRule::parse(when);
    f.timeout = item.millis("timeout_ms", f.timeout);
    const bool from_memory =
        f.kind == FallbackSpec::Kind::kCacheSnapshot || f.kind == FallbackSpec::Kind::kStatic;
    // Refused rather than ignored: these answer from memory, synchronously, in microseconds;
    // there is nothing for a timeout to cut short, and a key that does nothing misleads.
    if (from_memory && item.has("timeout_ms"))
      item.error("timeout_ms",
                 "only for kind: upstream (cache_snapshot and static answer from memory at once: "
                 "there is nothing to time out)");
    if (f.kind == FallbackSpec::Kind::kQueue && item.has("timeout_ms"))
      item.error("timeout_ms",
                 "only for kind: upstream (a queue answers once the write is stored; its replays "
                 "are bounded by queue.replay_timeout_ms)");
    if (f.when.before_handler() && !from_memory)
      when.error("before_handler",
                 "only for kind: cache_snapshot or static (to call another upstream on a latency "
                 "budget, use hedge:)");
    if (f.kind == FallbackSpec::Kind::kStatic) {
      f.status = static_cast<int>(item.integer("status", 200, 100, 599));
      f.body = item.string("body");
      for (auto& [name, value] : item.string_map("headers")) {
        if (name == "Content-Type" || name == "content-type") {
          f.content_type = value;
        } else {
          f.headers.emplace_back(name, value);
        }
      }
    } else {
      for (const char* key : {"status", "body", "headers"})
        if (item.has(key)) item.error(key, "only for kind: static");
    }
    add_counters(metrics, spec.route, f);
    config.fallbacks.push_back(std::move(f));
  }
  if (s.has("hedge")) {
    config.hedge = read_hedge(s.child("hedge"), spec, metrics, window);
    const bool answers_hedged =
        std::any_of(config.fallbacks.begin(), config.fallbacks.end(),
                    [](const FallbackSpec& f) { return f.when.matches_detail("hedged"); });
    if (!answers_hedged)
      s.error("hedge", "no fallback answers it: give one `when: { detail: [hedged] }`");
  }
  // Settings that nothing in this middleware would use are errors, not silently accepted.
  const bool uses_p99 =
      std::any_of(config.fallbacks.begin(), config.fallbacks.end(),
                  [](const FallbackSpec& f) { return f.when.uses_route_p99(); }) ||
      (config.hedge.enabled && config.hedge.p99_multiple > 0);
  if (s.has("latency_window_ms") && !uses_p99)
    s.error("latency_window_ms",
            "has no effect: no fallback uses route_p99_above_ms and no hedge uses p99_multiple");
  const bool uses_snapshots =
      config.hedge.enabled ||
      std::any_of(config.fallbacks.begin(), config.fallbacks.end(), [](const FallbackSpec& f) {
        return f.kind == FallbackSpec::Kind::kCacheSnapshot;
      });
  if (s.has("snapshots") && !uses_snapshots)
    s.error("snapshots", "has no effect: no fallback is kind: cache_snapshot");
  auto latency = latency_for(spec.services, spec.route, window);
  return std::make_shared<FallbackMiddleware>(spec.name, std::move(config), std::move(latency),
                                              clock, binder_for());
}

const MiddlewareRegistrar registrar("fallback", build);

}  // namespace
}  // namespace sluice::middleware
