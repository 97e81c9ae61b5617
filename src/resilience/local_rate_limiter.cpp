#include "resilience/local_rate_limiter.hpp"

#include <utility>

namespace sluice::resilience {

LocalRateLimiter::LocalRateLimiter(const Clock& clock, size_t max_keys, size_t shards)
    : clock_(clock), table_(max_keys, shards) {}

std::optional<RateDecision> LocalRateLimiter::try_decide(std::string_view key,
                                                         const RateLimit& limit) {
  return try_decide_at(key, limit, clock_.now());
}

std::optional<RateDecision> LocalRateLimiter::try_decide_at(std::string_view key,
                                                            const RateLimit& limit,
                                                            SteadyTime now) {
  if (!(limit.rate_per_second > 0) || !(limit.burst > 0)) return RateDecision{};
  return table_.with(
      key, [&] { return std::optional<TokenBucket>(std::in_place, limit); },
      [&](std::optional<TokenBucket>& bucket) {
        if (bucket->limit().rate_per_second != limit.rate_per_second ||
            bucket->limit().burst != limit.burst) {
          const SteadyTime debt = bucket->theoretical_arrival();
          bucket.emplace(limit, debt);
        }
        return bucket->try_acquire(now);
      });
}

void LocalRateLimiter::decide_async(std::string key, RateLimit limit,
                                    std::function<void(RateDecision)> done) {
  done(*try_decide(key, limit));
}

}  // namespace sluice::resilience
