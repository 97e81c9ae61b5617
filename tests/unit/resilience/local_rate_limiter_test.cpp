#include "resilience/local_rate_limiter.hpp"

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

TEST(LocalRateLimiter, KeysHaveTheirOwnBuckets) {
  FakeClock clock;
  LocalRateLimiter limiter(clock, 100);
  const RateLimit limit{.rate_per_second = 1, .burst = 2};
  EXPECT_TRUE(limiter.try_decide("a", limit)->allowed);
  EXPECT_TRUE(limiter.try_decide("a", limit)->allowed);
  const auto denied = limiter.try_decide("a", limit);
  ASSERT_TRUE(denied.has_value());
  EXPECT_FALSE(denied->allowed);
  EXPECT_EQ(denied->limit, 2);
  EXPECT_EQ(denied->retry_after, std::chrono::seconds(1));
  EXPECT_TRUE(limiter.try_decide("b", limit)->allowed);
  EXPECT_EQ(limiter.size(), 2u);
  clock.advance(std::chrono::seconds(1));
  EXPECT_TRUE(limiter.try_decide("a", limit)->allowed);
}

TEST(LocalRateLimiter, DecideAsyncAnswersAtOnce) {
  FakeClock clock;
  LocalRateLimiter limiter(clock);
  int calls = 0;
  limiter.decide_async("k", {.rate_per_second = 1, .burst = 1}, [&](RateDecision d) {
    ++calls;
    EXPECT_TRUE(d.allowed);
  });
  EXPECT_EQ(calls, 1);
}

TEST(LocalRateLimiter, NewLimitRebuildsTheBucketKeepingItsDebt) {
  FakeClock clock;
  LocalRateLimiter limiter(clock);
  const RateLimit small{.rate_per_second = 10, .burst = 1};
  EXPECT_TRUE(limiter.try_decide("k", small)->allowed);
  EXPECT_FALSE(limiter.try_decide("k", small)->allowed);
  const RateLimit bigger{.rate_per_second = 10, .burst = 3};
  EXPECT_TRUE(limiter.try_decide("k", bigger)->allowed);
  EXPECT_TRUE(limiter.try_decide("k", bigger)->allowed);
  EXPECT_FALSE(limiter.try_decide("k", bigger)->allowed);
}

TEST(LocalRateLimiter, InvalidLimitFailsClosed) {
  FakeClock clock;
  LocalRateLimiter limiter(clock);
  const auto d = limiter.try_decide("k", {.rate_per_second = 0, .burst = 5});
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(limiter.size(), 0u);
}

TEST(LocalRateLimiter, KeyCountIsBounded) {
  FakeClock clock;
  LocalRateLimiter limiter(clock, 64, 4);
  for (int i = 0; i < 1000; ++i)
    limiter.try_decide(std::to_string(i), {1, 1});
  EXPECT_LE(limiter.size(), 64u);
  EXPECT_EQ(limiter.evictions(), 1000u - limiter.size());
}

}  // namespace
}  // namespace sluice::resilience
