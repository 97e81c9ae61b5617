#include "resilience/redis/redis_limiter_config.hpp"

#include <string>

namespace sluice::resilience::redis {
namespace {

std::string positive_ms(const char* field, std::chrono::milliseconds v) {
  if (v.count() > 0) return {};
  return std::string("redis.") + field + ": must be > 0 ms (got " + std::to_string(v.count()) + ")";
}

}  // namespace

std::string RedisLimiterConfig::validate() const {
  if (host.empty()) return "redis.host: must not be empty";
  if (port <= 0 || port > 65535) {
    return "redis.port: must be in 1..65535 (got " + std::to_string(port) + ")";
  }
  if (!username.empty() && password.empty()) {
    return "redis.username: set, but redis.password is empty (AUTH needs both)";
  }
  if (db < 0) return "redis.db: must be >= 0 (got " + std::to_string(db) + ")";
  for (auto [field, v] :
       {std::pair{"connect_timeout", connect_timeout},
        std::pair{"command_timeout", command_timeout},
        std::pair{"reconnect_backoff_min", reconnect_backoff_min},
        std::pair{"reconnect_backoff_max", reconnect_backoff_max},
        std::pair{"probe_backoff_min", probe_backoff_min},
        std::pair{"probe_backoff_max", probe_backoff_max}, std::pair{"lease_period", lease_period},
        std::pair{"lease_max_age", lease_max_age}}) {
    if (auto err = positive_ms(field, v); !err.empty()) return err;
  }
  if (reconnect_backoff_max < reconnect_backoff_min) {
    return "redis.reconnect_backoff_max: must be >= reconnect_backoff_min";
  }
  if (probe_backoff_max < probe_backoff_min) {
    return "redis.probe_backoff_max: must be >= probe_backoff_min";
  }
  if (connections < 1 || connections > 64) {
    return "redis.connections: must be in 1..64 (got " + std::to_string(connections) + ")";
  }
  if (key_prefix.empty()) return "redis.key_prefix: must not be empty";
  if (key_prefix.find_first_of("{}") != std::string::npos) {
    return "redis.key_prefix: must not contain '{' or '}' (sluice adds the hash tag itself)";
  }
  if (expected_instances < 1) {
    return "redis.expected_instances: must be >= 1 (got " + std::to_string(expected_instances) +
           ")";
  }
  if (failure_threshold < 1) {
    return "redis.failure_threshold: must be >= 1 (got " + std::to_string(failure_threshold) + ")";
  }
  if (!(lease_low_water >= 0 && lease_low_water < 1)) {
    return "redis.lease_low_water: must be in [0, 1) (got " + std::to_string(lease_low_water) + ")";
  }
  if (lease_max < 0) return "redis.lease_max: must be >= 0 (0 = burst / expected_instances)";
  if (lease_max_age < lease_period) return "redis.lease_max_age: must be >= lease_period";
  return {};
}

const char* to_string(RedisLimiterConfig::Mode mode) {
  return mode == RedisLimiterConfig::Mode::kLeased ? "leased" : "per_request";
}

const char* to_string(RedisLimiterConfig::FailurePolicy policy) {
  switch (policy) {
    case RedisLimiterConfig::FailurePolicy::kFailOpen:
      return "fail_open";
    case RedisLimiterConfig::FailurePolicy::kFailClosed:
      return "fail_closed";
    case RedisLimiterConfig::FailurePolicy::kLocal:
      return "local";
  }
  return "?";
}

}  // namespace sluice::resilience::redis
