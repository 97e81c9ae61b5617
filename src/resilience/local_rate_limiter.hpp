// LocalRateLimiter — the in-process RateLimiterBackend: one GCRA token bucket per key in a
// bounded KeyTable. Always answers at once. With leases on, a gateway worker takes a key's
// tokens a few at a time and spends them alone (token_lease.hpp).
//
//   LocalRateLimiter limiter(clock, /*max_keys=*/100000);
//   RateDecision d = *limiter.try_decide("ip:10.0.0.1", {.rate_per_second = 10, .burst = 20});
//   if (!d.allowed) reply_429(d);
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "resilience/key_table.hpp"
#include "resilience/rate_limiter_backend.hpp"
#include "resilience/token_bucket.hpp"
#include "resilience/token_lease.hpp"
#include "sluice/clock.hpp"

namespace sluice::resilience {

class LocalRateLimiter final : public RateLimiterBackend {
 public:
  // leases: whether worker threads (those that claimed a worker shard, core/worker_shard.hpp) may
  // lease tokens. Only for callers that do not publish a decision's `remaining` (RateLimit-*
  // headers): on a lease a decision's remaining and reset_after are those of the lease's start.
  explicit LocalRateLimiter(const Clock& clock = system_steady_clock(), size_t max_keys = 100000,
                            size_t shards = 16, bool leases = false);
  ~LocalRateLimiter() override;

  // Never nullopt. A key is meant to have one limit: when a call brings a different one (a
  // config reload), the key's bucket is rebuilt with the new limit and keeps its debt.
  // An invalid limit (rate or burst <= 0) denies, with limit 0: fail closed, visibly.
  std::optional<RateDecision> try_decide(std::string_view key, const RateLimit& limit) override;
  const Clock* clock() const override { return &clock_; }
  // The same, as of `now` on clock() (a reading the caller already holds).
  std::optional<RateDecision> try_decide_at(std::string_view key, const RateLimit& limit,
                                            SteadyTime now) override;

  // Calls done(*try_decide(key, limit)) before returning.
  void decide_async(std::string key, RateLimit limit,
                    std::function<void(RateDecision)> done) override;

  size_t size() const { return table_.size(); }
  uint64_t evictions() const { return table_.evictions(); }

 private:
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // One worker's leases, by key; only that worker touches it.
  struct alignas(64) WorkerLeases {
    std::unordered_map<std::string, TokenLease, KeyHash, std::equal_to<>> by_key;
  };
  // The most keys one worker holds leases on; past it, new keys are decided on the shared
  // bucket (after a sweep of the ended leases).
  static constexpr size_t kMaxLeasedKeys = 1024;

  // Runs fn(TokenBucket&) on key's shared bucket (made, or rebuilt for a new limit, first)
  // under its shard lock.
  template <class Fn>
  decltype(auto) on_bucket(std::string_view key, const RateLimit& limit, Fn&& fn);
  // One token from key's shared bucket.
  RateDecision take_shared(std::string_view key, const RateLimit& limit, SteadyTime now);
  RateDecision decide_leased(WorkerLeases& mine, std::string_view key, const RateLimit& limit,
                             SteadyTime now);
  void give_back(std::string_view key, const TokenLease& lease, SteadyTime now);

  const Clock& clock_;
  // optional<> so a bucket (not movable: it holds an atomic) can be rebuilt in place.
  KeyTable<std::optional<TokenBucket>> table_;
  std::unique_ptr<WorkerLeases[]> leases_;  // per worker shard; null when leases are off
  size_t lease_mask_ = 0;
  size_t lease_workers_ = 0;  // how many workers may hold leases at once (sole-writer shards)
};

}  // namespace sluice::resilience
