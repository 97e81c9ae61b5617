#include "middleware/rate_limit/redis_backend.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <atomic>
#include <mutex>

#include "middleware/rate_limit/rate_limit_stats.hpp"
#include "resilience/redis/redis_settings.hpp"

namespace sluice::middleware {

using resilience::redis::RedisLimiterConfig;
using resilience::redis::RedisRateLimiter;

std::optional<RedisLimiterConfig> read_redis_config(const Settings& s) {
  RedisLimiterConfig c;
  resilience::redis::RedisConnectionOptions conn;
  conn.command_timeout = c.command_timeout;
  read_redis_connection(s, conn);
  c.host = conn.host;
  c.port = conn.port;
  c.username = conn.username;
  c.password = conn.password;
  c.db = conn.db;
  c.connect_timeout = conn.connect_timeout;
  c.command_timeout = conn.command_timeout;
  c.reconnect_backoff_min = conn.reconnect_min;
  c.reconnect_backoff_max = conn.reconnect_max;
  c.connections = static_cast<int>(s.integer("connections", c.connections, 1, 64));
  c.key_prefix = s.string("key_prefix", c.key_prefix);
  c.mode = s.choice("mode", {"per_request", "leased"}, "per_request") == "leased"
               ? RedisLimiterConfig::Mode::kLeased
               : RedisLimiterConfig::Mode::kPerRequest;
  const auto policy = s.choice("on_failure", {"fail_open", "fail_closed", "local"}, "local");
  c.on_failure = policy == "fail_open"     ? RedisLimiterConfig::FailurePolicy::kFailOpen
                 : policy == "fail_closed" ? RedisLimiterConfig::FailurePolicy::kFailClosed
                                           : RedisLimiterConfig::FailurePolicy::kLocal;
  c.expected_instances = static_cast<int>(s.integer("expected_instances", 1, 1, 100000));
  c.failure_threshold =
      static_cast<int>(s.integer("failure_threshold", c.failure_threshold, 1, 1000));
  c.probe_backoff_min = s.millis("probe_backoff_min_ms", c.probe_backoff_min);
  c.probe_backoff_max = s.millis("probe_backoff_max_ms", c.probe_backoff_max);
  c.lease_period = s.millis("lease_period_ms", c.lease_period);
  c.lease_max_age = s.millis("lease_max_age_ms", c.lease_max_age);
  c.lease_low_water = s.number("lease_low_water", c.lease_low_water);
  c.lease_max = static_cast<int>(s.integer("lease_max", c.lease_max, 0, 1 << 30));
  if (auto err = c.validate(); !err.empty()) {
    // "redis.command_timeout: must be > 0 ms (got 0)": point at the settings map itself.
    s.error("", err);
    return std::nullopt;
  }
  return c;
}

namespace {
// Metric series of one Redis-backed middleware. Shared by the hooks (I/O thread) and the
// middleware; counters only move forward, by the difference to the limiter's own counts.
struct RedisMetrics {
  prometheus::Gauge* up = nullptr;
  prometheus::Counter* timeout = nullptr;
  prometheus::Counter* connection = nullptr;
  prometheus::Counter* script = nullptr;
  prometheus::Histogram* rtt = nullptr;
  std::atomic<RedisRateLimiter*> limiter{nullptr};
  std::mutex mu;
  std::uint64_t seen_timeout = 0, seen_connection = 0, seen_script = 0;

  void sync() {
    std::lock_guard lock(mu);
    RedisRateLimiter* l = limiter.load(std::memory_order_acquire);
    if (l == nullptr || up == nullptr) return;
    const auto s = l->stats();
    auto bump = [](prometheus::Counter* c, std::uint64_t now, std::uint64_t& seen) {
      if (now > seen) c->Increment(static_cast<double>(now - seen));
      seen = std::max(seen, now);
    };
    bump(timeout, s.errors_timeout, seen_timeout);
    bump(connection, s.errors_connection, seen_connection);
    bump(script, s.errors_script, seen_script);
  }
};
}  // namespace

RedisBackend make_redis_backend(const RedisLimiterConfig& config, prometheus::Registry* metrics,
                                const std::string& route, const std::string& limiter_label) {
  auto m = std::make_shared<RedisMetrics>();
  if (metrics != nullptr) {
    const RateLimitBackendStats b = rate_limit_backend_stats(metrics, route, limiter_label);
    m->up = b.up;
    m->timeout = b.errors_timeout;
    m->connection = b.errors_connection;
    m->script = b.errors_script;
    m->rtt = b.redis_rtt;
    m->up->Set(1);
  }
  resilience::redis::RedisLimiterHooks hooks;
  hooks.on_rtt = [m](double seconds) {
    if (m->rtt != nullptr) m->rtt->Observe(seconds);
  };
  hooks.on_backend_state = [m](bool up) {
    if (m->up != nullptr) m->up->Set(up ? 1 : 0);
    m->sync();
  };
  // The deleter unhooks the metrics first: decisions the limiter answers while it is destroyed
  // may still call sync_errors.
  std::shared_ptr<RedisRateLimiter> limiter(new RedisRateLimiter(config, std::move(hooks)),
                                            [m](RedisRateLimiter* l) {
                                              {
                                                std::lock_guard lock(m->mu);
                                                m->limiter.store(nullptr);
                                              }
                                              delete l;
                                            });
  m->limiter.store(limiter.get(), std::memory_order_release);
  return {limiter, [m] { m->sync(); }};
}

}  // namespace sluice::middleware
