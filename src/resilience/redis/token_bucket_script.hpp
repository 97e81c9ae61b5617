// TokenBucketScript — the shared token bucket as one Lua script on Redis's own clock
// (`TIME` inside the script, so instance clocks cannot skew the quota). Keys expire when a
// full refill would have made them idle; bucket names are Redis Cluster hash tags.
//
//   auto argv = TokenBucketScript::evalsha_args(TokenBucketScript::bucket_key("sluice:rl", "ip:1"),
//                                               {.rate_per_second = 100, .burst = 20}, 1, false);
//   client.execute(argv, [](RedisReply r) { auto out = TokenBucketScript::parse(r); });
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "resilience/rate_limiter_backend.hpp"
#include "resilience/redis/redis_reply.hpp"

namespace sluice::resilience::redis {

// What one run of the script decided.
struct ScriptOutcome {
  // All-or-nothing mode: 1 when the requested tokens were taken, else 0.
  // Partial (lease) mode: how many whole tokens were taken, 0..requested.
  long long granted = 0;
  long long remaining = 0;       // whole tokens left in Redis after this run
  long long reset_after_ms = 0;  // until the bucket is full again (also the key's PTTL)
  // Until the requested amount (capped at the burst in partial mode) could be taken; 0 when
  // fully granted; -1 when never (all-or-nothing request larger than the burst).
  long long retry_after_ms = 0;
};

class TokenBucketScript {
 public:
  static const std::string& source();
  static const std::string& sha();  // SHA-1 of source(), what EVALSHA names

  // "{prefix:key}": the whole name is the hash tag, so a bucket lives in one Cluster slot.
  static std::string bucket_key(std::string_view prefix, std::string_view key);

  // partial=false: take `requested` tokens or none. partial=true: take up to `requested` whole
  // tokens (a lease). requested may be fractional only when partial is false.
  static std::vector<std::string> evalsha_args(const std::string& bucket_key,
                                               const RateLimit& limit, double requested,
                                               bool partial);
  static std::vector<std::string> load_args();  // SCRIPT LOAD <source>

  // nullopt when the reply is not the script's 4-integer array, or a number is outside what
  // the script returns (negative counts or times; retry_after_ms below -1).
  static std::optional<ScriptOutcome> parse(const RedisReply& reply);
  // The per-request decision (all-or-nothing, one token) the outcome stands for.
  static RateDecision decision(const ScriptOutcome& out, const RateLimit& limit);
  // A time from the script in nanoseconds, capped at kMaxMs: a very slow rate (or a broken
  // Redis) can return milliseconds whose nanoseconds overflow, and callers add it to now.
  static constexpr long long kMaxMs = 10LL * 366 * 24 * 3600 * 1000;  // 10 years
  static std::chrono::nanoseconds duration_of_ms(long long ms);
  // Redis lost the script (restart, SCRIPT FLUSH, failover): load it and retry once.
  static bool is_noscript(const RedisReply& reply);
};

}  // namespace sluice::resilience::redis
