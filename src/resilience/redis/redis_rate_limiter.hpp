// RedisRateLimiter — a RateLimiterBackend whose token bucket per key lives in Redis, shared by
// every sluice instance: one Lua script on Redis time, driven from a dedicated I/O thread, with
// a declared policy (and its own breaker) for when Redis is down or slow.
//
//   RedisRateLimiter limiter(config);   // connects in the background; never blocks a caller
//   if (auto d = limiter.try_decide("ip:10.0.0.1", limit)) use(*d);
//   else limiter.decide_async("ip:10.0.0.1", limit, [](RateDecision d) { repost_and_use(d); });
//
// Modes (RedisLimiterConfig::Mode):
//   per_request  try_decide() answers only while Redis is down (with the policy); decide_async()
//                runs one EVALSHA. Exact: Redis decides every request. A decision whose reply
//                times out takes the policy, though Redis may have spent the token.
//   leased       each key holds a local lease of tokens taken from Redis atomically (the script's
//                partial mode). try_decide() spends them at once; when the lease falls to
//                lease_low_water of its size the next batch is requested in the background,
//                so the request path does not wait while tokens remain. The lease size follows
//                the key's observed local rate: rate_local * lease_period, clamped to
//                [1, cap], cap = lease_max or burst / expected_instances. When Redis grants
//                less than asked (the shared bucket is dry) the instance denies locally, without
//                asking again, until min(retry_after, lease_period) has passed. When the lease
//                is empty and a batch is in flight, decide_async() waits for it.
//
// Bounds of leased mode, N instances sharing a key with rate r and burst b:
//   over-admission   none beyond what Redis granted: an instance admits only leased tokens, so
//                    from any time the bucket was full, admitted <= b + r * elapsed. In a
//                    sliding window w, admitted <= b + r * (w + lease_max_age), because a token
//                    may be spent up to lease_max_age after Redis granted it.
//   under-admission  tokens leased but not (yet) spent: at most N * (1 + lease_low_water) * cap
//                    at any moment (<= 1.5 * b with the default cap); they are lost when an
//                    instance goes idle for lease_max_age or stops. Plus the local denials of a
//                    paced instance, at most lease_period each time the bucket ran dry, while
//                    another instance could have been served (tokens stay in Redis meanwhile).
// Degraded mode (both modes): failure_threshold consecutive timeouts/connection errors mark
// Redis down: every decision then takes on_failure at once (degraded = true; tokens already
// leased are still spent first), a PING probe with exponential backoff runs on the I/O thread,
// and on success the script is re-loaded and Redis is marked up. Each transition logs once.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "resilience/local_rate_limiter.hpp"
#include "resilience/rate_limiter_backend.hpp"
#include "resilience/redis/redis_client.hpp"
#include "resilience/redis/redis_limiter_config.hpp"
#include "resilience/redis/token_bucket_script.hpp"
#include "sluice/clock.hpp"

namespace sluice::resilience::redis {

// A snapshot of the counters the metrics layer exports as
// sluice_rate_limit_backend_up, sluice_rate_limit_backend_errors_total{kind=...},
// sluice_rate_limit_redis_calls_total, sluice_rate_limit_decisions_total{...}.
struct RedisLimiterStats {
  bool backend_up = true;
  std::uint64_t decisions_total = 0;     // every decision returned or delivered
  std::uint64_t decisions_degraded = 0;  // decided by the failure policy
  std::uint64_t decisions_leased = 0;    // answered from a local lease without a Redis call
  std::uint64_t redis_calls_total = 0;   // EVALSHA, SCRIPT LOAD, PING sent
  std::uint64_t errors_timeout = 0;
  std::uint64_t errors_connection = 0;   // incl. LOADING/BUSY/READONLY/NOAUTH-style replies
  std::uint64_t errors_script = 0;       // the script failed or answered nonsense
  std::uint64_t script_loads_total = 0;  // SCRIPT LOAD after NOSCRIPT or on coming back
  std::uint64_t rtt_count = 0;
  double rtt_seconds_sum = 0;
};

struct RedisLimiterHooks {
  std::function<void(double seconds)> on_rtt;     // every Redis answer; on the I/O thread
  std::function<void(bool up)> on_backend_state;  // every up/down transition; I/O thread
};

class RedisRateLimiter final : public RateLimiterBackend {
 public:
  // Starts connecting at once. `config` must be valid (validate() empty); an invalid config
  // throws std::invalid_argument with validate()'s message.
  explicit RedisRateLimiter(RedisLimiterConfig config, RedisLimiterHooks hooks = {},
                            const Clock& clock = system_steady_clock());
  // Stops the I/O thread; decisions waiting on Redis get the policy. Not from a callback.
  ~RedisRateLimiter() override;

  std::optional<RateDecision> try_decide(std::string_view key, const RateLimit& limit) override;
  void decide_async(std::string key, RateLimit limit,
                    std::function<void(RateDecision)> done) override;

  bool backend_up() const { return up_.load(std::memory_order_acquire); }
  RedisLimiterStats stats() const;
  // Why Redis is (or was last) unusable, e.g. "redis 127.0.0.1:6379: AUTH failed: WRONGPASS ...".
  std::string last_error() const;
  const RedisLimiterConfig& config() const { return config_; }

 private:
  struct Lease;
  struct Shard;
  struct Refill {
    std::string key;
    RateLimit limit;
    long long want = 0;
  };
  enum class ErrorKind { kTimeout, kConnection, kScript };

  RateDecision policy_decision(std::string_view key, const RateLimit& limit);
  RateDecision invalid_limit(const RateLimit& limit);

  void run_script(std::vector<std::string> argv, ReplyCallback done, bool retried = false);
  std::optional<ScriptOutcome> classify(const RedisReply& reply);
  void record_failure(ErrorKind kind, const std::string& why);
  void mark_down(const std::string& why);
  void probe(std::chrono::milliseconds backoff);
  void mark_up();

  // Leased mode; the *_locked functions run under the key's shard mutex.
  Shard& shard_for(std::string_view key);
  Lease& lease_locked(Shard& shard, std::string_view key, const RateLimit& limit, SteadyTime now);
  std::optional<RateDecision> spend_locked(Lease& lease, SteadyTime now);
  std::optional<Refill> maybe_refill_locked(Lease& lease, std::string_view key, SteadyTime now,
                                            bool empty);
  void issue_refill(Refill refill);
  void on_refill(const Refill& refill, const RedisReply& reply);
  long long lease_cap(const RateLimit& limit) const;

  RedisLimiterConfig config_;
  RedisLimiterHooks hooks_;
  const Clock& clock_;
  LocalRateLimiter local_;  // the kLocal policy's buckets

  std::atomic<bool> up_{true};
  std::atomic<int> consecutive_failures_{0};
  mutable std::mutex error_mutex_;
  std::string last_error_;

  std::atomic<std::uint64_t> decisions_{0}, degraded_{0}, leased_{0}, calls_{0};
  std::atomic<std::uint64_t> errors_timeout_{0}, errors_connection_{0}, errors_script_{0};
  std::atomic<std::uint64_t> script_loads_{0}, rtt_count_{0}, rtt_ns_sum_{0};

  std::array<std::unique_ptr<Shard>, 16> shards_;
  std::unique_ptr<RedisClient> client_;  // last: stopped first, while the rest is alive
};

}  // namespace sluice::resilience::redis
