#include "resilience/token_bucket.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

TEST(TokenBucket, StartsFullAndAdmitsTheBurst) {
  FakeClock clock;
  TokenBucket b({.rate_per_second = 10, .burst = 5});
  for (int i = 0; i < 5; ++i) {
    const RateDecision d = b.try_acquire(clock.now());
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 5);
    EXPECT_EQ(d.remaining, 4 - i);
    EXPECT_EQ(d.retry_after, Nanos(0));
    EXPECT_EQ(d.reset_after, milliseconds(100) * (i + 1));
  }
  const RateDecision d = b.try_acquire(clock.now());
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_EQ(d.retry_after, milliseconds(100));
  EXPECT_EQ(d.reset_after, milliseconds(500));
}

TEST(TokenBucket, RefillsAtTheRate) {
  FakeClock clock;
  TokenBucket b({.rate_per_second = 10, .burst = 2});
  EXPECT_TRUE(b.try_acquire(clock.now()).allowed);
  EXPECT_TRUE(b.try_acquire(clock.now()).allowed);
  EXPECT_FALSE(b.try_acquire(clock.now()).allowed);
  clock.advance(milliseconds(99));
  const RateDecision early = b.try_acquire(clock.now());
  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.retry_after, milliseconds(1));
  clock.advance(milliseconds(1));
  EXPECT_TRUE(b.try_acquire(clock.now()).allowed);
  EXPECT_FALSE(b.try_acquire(clock.now()).allowed);
  clock.advance(std::chrono::seconds(10));  // long idle: back to the burst, not beyond
  EXPECT_EQ(b.try_acquire(clock.now()).remaining, 1);
  EXPECT_TRUE(b.try_acquire(clock.now()).allowed);
  EXPECT_FALSE(b.try_acquire(clock.now()).allowed);
}

TEST(TokenBucket, SteadyRateOverTime) {
  FakeClock clock;
  TokenBucket b({.rate_per_second = 100, .burst = 10});
  int admitted = 0;
  for (int ms = 0; ms < 10000; ++ms) {
    for (int i = 0; i < 3; ++i)
      admitted += b.try_acquire(clock.now()).allowed;
    clock.advance(milliseconds(1));
  }
  // burst + rate * elapsed, elapsed being 9.999 s between the first and the last attempt
  EXPECT_LE(admitted, 10 + 999);
  EXPECT_GE(admitted, 10 + 998);
}

TEST(TokenBucket, CostTakesSeveralTokens) {
  FakeClock clock;
  TokenBucket b({.rate_per_second = 1, .burst = 10});
  RateDecision d = b.try_acquire(clock.now(), 7);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 3);
  d = b.try_acquire(clock.now(), 4);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 3);
  EXPECT_EQ(d.retry_after, std::chrono::seconds(1));
  d = b.try_acquire(clock.now(), 11);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, Nanos::max());
}

TEST(TokenBucket, FractionalRate) {
  FakeClock clock;
  TokenBucket b({.rate_per_second = 0.5, .burst = 1});
  EXPECT_TRUE(b.try_acquire(clock.now()).allowed);
  const RateDecision d = b.try_acquire(clock.now());
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, std::chrono::seconds(2));
}

TEST(TokenBucket, CarriesDebtWhenRebuilt) {
  FakeClock clock;
  TokenBucket a({.rate_per_second = 10, .burst = 2});
  a.try_acquire(clock.now());
  a.try_acquire(clock.now());
  TokenBucket b({.rate_per_second = 10, .burst = 3}, a.theoretical_arrival());
  EXPECT_TRUE(b.try_acquire(clock.now()).allowed);
  EXPECT_FALSE(b.try_acquire(clock.now()).allowed);
}

TEST(TokenBucket, RejectsInvalidLimits) {
  EXPECT_THROW(TokenBucket({.rate_per_second = 0, .burst = 1}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({.rate_per_second = 1, .burst = 0}), std::invalid_argument);
}

// Four threads on the real clock: whatever the interleaving, the CAS loop never admits more
// than burst + rate * elapsed.
TEST(TokenBucket, NoOverAdmissionUnderConcurrency) {
  const Clock& clock = system_steady_clock();
  constexpr double kRate = 20000;
  constexpr double kBurst = 100;
  TokenBucket b({.rate_per_second = kRate, .burst = kBurst});
  std::atomic<int64_t> admitted{0};
  const SteadyTime start = clock.now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      int64_t mine = 0;
      for (int i = 0; i < 200000; ++i)
        mine += b.try_acquire(clock.now()).allowed;
      admitted.fetch_add(mine);
    });
  }
  for (auto& t : threads)
    t.join();
  const double elapsed = std::chrono::duration<double>(clock.now() - start).count();
  EXPECT_LE(double(admitted.load()), kBurst + kRate * elapsed);
  EXPECT_GE(admitted.load(), int64_t(kBurst));
}

// The same with a fake clock moved by another thread, so that the bound is tight.
TEST(TokenBucket, NoOverAdmissionUnderConcurrencyFakeClock) {
  FakeClock clock;
  TokenBucket b({.rate_per_second = 1000, .burst = 10});
  const SteadyTime start = clock.now();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      int64_t mine = 0;
      while (!stop.load()) {
        for (int i = 0; i < 64; ++i)
          mine += b.try_acquire(clock.now()).allowed;
        std::this_thread::yield();  // leave the (shared, 2-core) CPU to the ticking thread
      }
      admitted.fetch_add(mine);
    });
  }
  for (int i = 0; i < 500; ++i) {
    clock.advance(std::chrono::microseconds(100));
    std::this_thread::yield();
  }
  stop = true;
  for (auto& t : threads)
    t.join();
  const double elapsed = std::chrono::duration<double>(clock.now() - start).count();
  EXPECT_LE(double(admitted.load()), 10 + 1000 * elapsed);
}

}  // namespace
}  // namespace sluice::resilience
