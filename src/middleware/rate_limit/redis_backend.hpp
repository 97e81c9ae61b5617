// The `backend: redis` of rate_limit: reads the `redis:` settings into a RedisLimiterConfig and
// builds a RedisRateLimiter whose hooks feed the metrics (declared in rate_limit_stats.hpp)
//   sluice_rate_limit_backend_up{limiter}, sluice_rate_limit_backend_errors_total{limiter,kind},
//   sluice_rate_limit_redis_rtt_seconds{limiter}.
//
//   redis: { address: "127.0.0.1:6379", mode: leased, on_failure: local, expected_instances: 3 }
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "resilience/redis/redis_limiter_config.hpp"
#include "resilience/redis/redis_rate_limiter.hpp"
#include "sluice/settings.hpp"

namespace prometheus {
class Registry;
}

namespace sluice::middleware {

// Reads the settings; nullopt after reporting errors through `s`.
std::optional<resilience::redis::RedisLimiterConfig> read_redis_config(const Settings& s);

struct RedisBackend {
  std::shared_ptr<resilience::redis::RedisRateLimiter> limiter;
  // Brings the error counters up to date with the limiter's own; call after a degraded
  // decision (the hooks cover the rest).
  std::function<void()> sync_errors;
};

// `metrics` may be null. `route` is the route's name, `limiter_label` the middleware's.
RedisBackend make_redis_backend(const resilience::redis::RedisLimiterConfig& config,
                                prometheus::Registry* metrics, const std::string& route,
                                const std::string& limiter_label);

}  // namespace sluice::middleware
