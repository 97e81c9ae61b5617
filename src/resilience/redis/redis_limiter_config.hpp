// RedisLimiterConfig — settings of the Redis-backed rate limiter (one quota shared by every
// sluice instance). Plain data: the YAML loader fills it and calls validate().
//
//   RedisLimiterConfig c;  c.host = "10.0.0.5";  c.mode = RedisLimiterConfig::Mode::kLeased;
//   c.on_failure = RedisLimiterConfig::FailurePolicy::kLocal;  c.expected_instances = 3;
//   if (auto err = c.validate(); !err.empty()) return error(err);
#pragma once

#include <chrono>
#include <string>

namespace sluice::resilience::redis {

struct RedisLimiterConfig {
  enum class Mode {
    // One EVALSHA per decision: exact (the quota's error is only what timed-out calls hide),
    // costs one Redis round trip per request. try_decide() answers only while Redis is down.
    kPerRequest,
    // Each instance takes small batches of tokens from Redis and spends them locally: no Redis
    // call on the request path while tokens remain. See redis_rate_limiter.hpp for the bounds.
    kLeased,
  };
  enum class FailurePolicy {
    kFailOpen,    // allow (RateDecision::degraded = true): availability over protection
    kFailClosed,  // deny (the middleware answers 429 or 503): protection over availability
    // A local bucket per key with rate/expected_instances and burst/expected_instances: the
    // default, because it keeps protecting the upstream and keeps serving, within the error
    // of a wrong expected_instances.
    kLocal,
  };

  // Connection.
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // ACL user; empty: `AUTH password` (legacy requirepass)
  std::string password;  // empty: no AUTH
  int db = 0;
  std::chrono::milliseconds connect_timeout{200};  // TCP connect + AUTH + SELECT + SCRIPT LOAD
  std::chrono::milliseconds command_timeout{50};   // one EVALSHA; then the failure policy
  std::chrono::milliseconds reconnect_backoff_min{50};
  std::chrono::milliseconds reconnect_backoff_max{2000};
  int connections = 1;  // pipelined connections, used round-robin

  // Keys: "{key_prefix:<key>}". Instances sharing a quota must share the prefix.
  std::string key_prefix = "sluice:rl";

  Mode mode = Mode::kPerRequest;
  FailurePolicy on_failure = FailurePolicy::kLocal;
  int expected_instances = 1;  // for kLocal and for the lease cap

  // Degraded mode: this many consecutive failures (timeouts, connection errors) mark Redis
  // down; then decisions take the policy at once and a PING probe runs with backoff.
  int failure_threshold = 3;
  std::chrono::milliseconds probe_backoff_min{100};
  std::chrono::milliseconds probe_backoff_max{2000};

  // Leased mode.
  // A lease is sized to last about this long at the instance's observed rate.
  std::chrono::milliseconds lease_period{50};
  // Leased tokens not spent within this age are dropped (they bound over-admission in a
  // sliding window to rate * lease_max_age; see redis_rate_limiter.hpp).
  std::chrono::milliseconds lease_max_age{500};
  // The next lease is requested when local tokens fall to this fraction of the last lease.
  double lease_low_water = 0.5;
  // Upper bound of one lease; 0 = burst / expected_instances (at least 1).
  int lease_max = 0;

  // Empty when valid; otherwise one message naming the field, e.g.
  // "redis.command_timeout: must be > 0 ms (got 0)".
  std::string validate() const;
};

const char* to_string(RedisLimiterConfig::Mode mode);
const char* to_string(RedisLimiterConfig::FailurePolicy policy);

}  // namespace sluice::resilience::redis
