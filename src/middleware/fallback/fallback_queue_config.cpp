// The `queue:` settings of a `kind: queue` fallback (its metrics: fallback_stats.hpp), and the
// process-wide registry of queues that keeps a queue (and its replayer) across reloads.
#include <filesystem>

#include "middleware/fallback/fallback_middleware.hpp"
#include "middleware/fallback/fallback_queue.hpp"
#include "middleware/fallback/fallback_stats.hpp"
#include "queue/local_storage.hpp"
#include "queue/redis_stream_storage.hpp"
#include "resilience/redis/redis_settings.hpp"
#include "sluice/services.hpp"
#include "upstream/upstreams_section.hpp"

namespace sluice::middleware {
namespace {

// `backend: redis`: the `redis:` map (connection keys as the rate limiter's) of a queue.
void read_redis_queue(const Settings& q, QueueFallback& out) {
  auto& r = out.redis;
  r.connection.command_timeout = std::chrono::milliseconds(500);  // an XADD of up to max_body
  r.connection.connect_timeout = std::chrono::milliseconds(500);
  if (!q.has("redis")) {
    q.error("redis", "is required with backend: redis (at least address:)");
    return;
  }
  const Settings s = q.child("redis");
  resilience::redis::read_redis_connection(s, r.connection);
  if (!r.connection.username.empty() && r.connection.password.empty())
    s.error("username", "set, but the password is empty (AUTH needs both)");
  if (r.connection.command_timeout.count() <= 0) s.error("command_timeout_ms", "must be > 0");
  if (r.connection.connect_timeout.count() <= 0) s.error("connect_timeout_ms", "must be > 0");
  r.connection.wedged_after =
      std::max(std::chrono::milliseconds(1000), 2 * r.connection.command_timeout);
  const std::string prefix = s.string("key_prefix", "sluice:q");
  if (prefix.empty() || prefix.find_first_of("{}") != std::string::npos)
    s.error("key_prefix", "must be non-empty, without '{' or '}' (sluice adds the hash tag)");
  r.stream = "{" + prefix + ":" + out.options.name + "}";
  r.group = s.string("group", r.group);
  if (r.group.empty()) s.error("group", "must not be empty");
  r.consumer = s.string("consumer");  // empty: <hostname>-<pid>
  r.partitions = static_cast<int>(
      s.integer("partitions", r.partitions, 1, queue::RedisStreamStorage::kMaxPartitions));
  r.lease = s.millis("lease_ms", r.lease);
  if (r.lease.count() < 300) s.error("lease_ms", "must be >= 300");
  r.dead_max_length = static_cast<std::size_t>(s.integer(
      "dead_max_length", static_cast<std::int64_t>(r.dead_max_length), 1, std::int64_t{1} << 40));
  r.dead_max_age = s.millis("dead_max_age_ms", r.dead_max_age);
  if (r.dead_max_age.count() < 0) s.error("dead_max_age_ms", "must be >= 0 (0: no age limit)");
  r.max_length = static_cast<std::size_t>(
      s.integer("max_length", static_cast<std::int64_t>(r.max_length), 1, std::int64_t{1} << 40));
  r.on_down = s.choice("on_redis_down", {"local", "reject"}, "local") == "reject"
                  ? queue::RedisQueueOptions::OnDown::kReject
                  : queue::RedisQueueOptions::OnDown::kLocal;
  out.options.poll_interval = s.millis("poll_interval_ms", out.options.poll_interval);
  if (out.options.poll_interval.count() <= 0) s.error("poll_interval_ms", "must be > 0");
  out.options.max_held = static_cast<std::size_t>(
      s.integer("max_held", static_cast<std::int64_t>(out.options.max_held), 1, 100000));
}

std::shared_ptr<queue::StoreAndForward> open_queue(const QueueFallback& q,
                                                   prometheus::Registry* metrics,
                                                   std::string& error) {
  const auto& o = q.options;
  queue::QueueMetrics m = fallback_queue_stats(metrics, o.name);
  if (o.backend == "local") return queue::StoreAndForward::open(o, m, error);
  std::shared_ptr<queue::LocalStorage> spill;
  if (!o.log.dir.empty()) {
    spill = queue::LocalStorage::open(o.log, o.name, error);
    if (!spill) return nullptr;
  }
  auto redis = std::make_shared<queue::RedisStreamStorage>(
      q.redis, o.name, spill, fallback_queue_redis_stats(metrics, o.name));
  std::vector<std::shared_ptr<queue::QueueStorage>> storages{redis};
  if (spill) storages.push_back(spill);
  return queue::StoreAndForward::open(o, m, std::move(storages));
}

}  // namespace

void read_queue_fallback(const Settings& item, const MiddlewareSpec& spec, FallbackSpec& f,
                         prometheus::Registry* metrics) {
  f.cluster = item.string("cluster");
  if (f.cluster.empty()) {
    item.error("cluster", "is required for kind: queue (the upstreams: cluster it replays to)");
  } else if (spec.build != nullptr) {
    const auto* set = spec.build->extras->get<upstream::ClusterSet>();
    if (set == nullptr || set->find(f.cluster) == nullptr)
      item.error("cluster", "unknown cluster \"" + f.cluster + "\" (not in upstreams:)");
  }
  if (item.has("endpoint")) item.error("endpoint", "kind: queue replays to a cluster:");
  const Settings q = item.child("queue");
  auto out = std::make_shared<QueueFallback>();
  auto& o = out->options;
  o.name = q.string("name", f.name);
  const bool redis = q.choice("backend", {"local", "redis"}, "local") == "redis";
  if (redis) read_redis_queue(q, *out);
  o.log.dir = q.string("dir");
  const bool needs_dir = !redis || out->redis.on_down == queue::RedisQueueOptions::OnDown::kLocal;
  if (o.log.dir.empty() && needs_dir)
    q.error("dir", redis ? "is required with on_redis_down: local (the local log while Redis is "
                           "down; or on_redis_down: reject)"
                         : "is required (a local directory that only this queue uses)");
  else if (!o.log.dir.empty() && !needs_dir)
    q.error("dir", "has no use with on_redis_down: reject (nothing is kept locally)");
  else if (!o.log.dir.empty())
    o.log.dir = std::filesystem::absolute(o.log.dir).lexically_normal().string();
  o.backend = redis ? "redis " + out->redis.connection.host + ":" +
                          std::to_string(out->redis.connection.port) + " " + out->redis.stream
                    : "local";
  const auto fsync = q.choice("fsync", {"always", "interval", "never"}, "interval");
  o.log.fsync = fsync == "always"  ? queue::FsyncPolicy::kAlways
                : fsync == "never" ? queue::FsyncPolicy::kNever
                                   : queue::FsyncPolicy::kInterval;
  o.fsync_interval = q.millis("fsync_interval_ms", o.fsync_interval);
  if (q.has("fsync_interval_ms") && fsync != "interval")
    q.error("fsync_interval_ms", "only with fsync: interval");
  if (o.fsync_interval.count() <= 0) q.error("fsync_interval_ms", "must be > 0");
  o.log.max_bytes = static_cast<std::uint64_t>(
      q.integer("max_bytes", std::int64_t{1} << 30, 4096, std::int64_t{1} << 50));
  o.log.segment_bytes =
      static_cast<std::uint64_t>(q.integer("segment_bytes", 64 << 20, 4096, std::int64_t{1} << 40));
  o.max_age = q.millis("max_age_ms", o.max_age);
  o.concurrency = static_cast<int>(q.integer("concurrency", o.concurrency, 1, 4096));
  o.max_rate = q.number("max_rate", 0, 0, 1e9);
  o.max_attempts = static_cast<int>(q.integer("max_attempts", o.max_attempts, 1, 1'000'000));
  o.backoff_base = q.millis("backoff_base_ms", o.backoff_base);
  o.backoff_max = q.millis("backoff_max_ms", o.backoff_max);
  if (o.backoff_base.count() <= 0) q.error("backoff_base_ms", "must be > 0");
  if (o.backoff_max < o.backoff_base) q.error("backoff_max_ms", "must be >= backoff_base_ms");
  o.replay_timeout = q.millis("replay_timeout_ms", o.replay_timeout);
  if (o.replay_timeout.count() <= 0) q.error("replay_timeout_ms", "must be > 0");
  out->max_body = static_cast<std::size_t>(
      q.integer("max_body_bytes", static_cast<std::int64_t>(out->max_body), 0, 256 << 20));
  if (q.has("methods")) {
    out->methods = q.strings("methods");
    if (out->methods.empty()) q.error("methods", "at least one method");
    for (const auto& m : out->methods)
      if (m == "GET" || m == "HEAD")
        q.error("methods", m + " is never queued: a read needs its answer now");
  }
  const auto order = q.choice("order_by", {"none", "header", "client", "path"}, "none");
  out->order_by = order == "header"   ? QueueFallback::OrderBy::kHeader
                  : order == "client" ? QueueFallback::OrderBy::kClient
                  : order == "path"   ? QueueFallback::OrderBy::kPath
                                      : QueueFallback::OrderBy::kNone;
  out->order_header = q.string("order_header");
  if (order == "header" && out->order_header.empty())
    q.error("order_header", "is required with order_by: header");
  if (order != "header" && q.has("order_header"))
    q.error("order_header", "only with order_by: header");
  out->retry_after_s = static_cast<int>(q.integer("retry_after_s", out->retry_after_s, 1, 3600));
  out->accepted_body = q.string("accepted_body");
  if (!item.has("queue")) item.error("queue", "is required for kind: queue (at least dir:)");

  if (spec.services != nullptr && q.ok() && (!o.log.dir.empty() || redis)) {
    const auto shared = shared_queue_registry(*spec.services);
    auto& registry = *shared;
    std::lock_guard lock(registry.mu);
    for (const auto& [name, store] : registry.by_name) {
      if (name != o.name && !o.log.dir.empty() && store->options().log.dir == o.log.dir) {
        q.error("dir", "is the directory of queue \"" + name + "\"; every queue needs its own");
        return;
      }
    }
    auto& slot = registry.by_name[o.name];
    if (slot && slot->options().log.dir != o.log.dir) {
      q.error("dir", "queue \"" + o.name + "\" runs with dir " + slot->options().log.dir +
                         "; a queue's directory changes with a restart, not a reload");
      return;
    }
    if (slot && slot->options().backend != o.backend) {
      q.error("backend", "queue \"" + o.name + "\" runs on " + slot->options().backend +
                             "; a queue's backend changes with a restart, not a reload");
      return;
    }
    if (!slot) {
      std::string error;
      slot = open_queue(*out, metrics, error);
      if (!slot) {
        registry.by_name.erase(o.name);
        q.error(redis && o.log.dir.empty() ? "backend" : "dir", error);
        return;
      }
    }
    out->store = slot;
  }
  f.queue = std::move(out);
}

}  // namespace sluice::middleware
