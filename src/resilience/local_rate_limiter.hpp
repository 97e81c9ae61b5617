// LocalRateLimiter — the in-process RateLimiterBackend: one GCRA token bucket per key in a
// bounded KeyTable. Always answers at once.
//
//   LocalRateLimiter limiter(clock, /*max_keys=*/100000);
//   RateDecision d = *limiter.try_decide("ip:10.0.0.1", {.rate_per_second = 10, .burst = 20});
//   if (!d.allowed) reply_429(d);
#pragma once

#include <cstddef>
#include <optional>

#include "resilience/key_table.hpp"
#include "resilience/rate_limiter_backend.hpp"
#include "resilience/token_bucket.hpp"
#include "sluice/clock.hpp"

namespace sluice::resilience {

class LocalRateLimiter final : public RateLimiterBackend {
 public:
  explicit LocalRateLimiter(const Clock& clock = system_steady_clock(), size_t max_keys = 100000,
                            size_t shards = 16);

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
  const Clock& clock_;
  // optional<> so a bucket (not movable: it holds an atomic) can be rebuilt in place.
  KeyTable<std::optional<TokenBucket>> table_;
};

}  // namespace sluice::resilience
