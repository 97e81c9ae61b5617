#include "resilience/concurrency_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace sluice::resilience {
namespace {

TEST(ConcurrencyLimiter, CapsInFlight) {
  ConcurrencyLimiter limiter(2);
  EXPECT_TRUE(limiter.try_acquire());
  EXPECT_TRUE(limiter.try_acquire());
  EXPECT_FALSE(limiter.try_acquire());
  EXPECT_EQ(limiter.in_flight(), 2u);
  EXPECT_EQ(limiter.rejected(), 1u);
  limiter.release();
  EXPECT_TRUE(limiter.try_acquire());
}

TEST(ConcurrencyLimiter, NoQueueRefusesToEnqueue) {
  ConcurrencyLimiter limiter(1);
  EXPECT_FALSE(limiter.enqueue([](bool) {}).has_value());
  EXPECT_EQ(limiter.queue_full(), 1u);
}

TEST(ConcurrencyLimiter, ReleaseHandsTheSlotToTheOldestWaiter) {
  ConcurrencyLimiter limiter(1, 4);
  ASSERT_TRUE(limiter.try_acquire());
  std::vector<int> granted;
  ASSERT_TRUE(limiter.enqueue([&](bool ok) { granted.push_back(ok ? 1 : -1); }));
  ASSERT_TRUE(limiter.enqueue([&](bool ok) { granted.push_back(ok ? 2 : -2); }));
  EXPECT_EQ(limiter.queued(), 2u);
  EXPECT_FALSE(limiter.try_acquire());  // newcomers do not overtake waiters
  limiter.release();
  EXPECT_EQ(granted, std::vector<int>{1});
  EXPECT_EQ(limiter.in_flight(), 1u);  // the slot moved to waiter 1
  limiter.release();
  EXPECT_EQ(granted, (std::vector<int>{1, 2}));
  limiter.release();
  EXPECT_EQ(limiter.in_flight(), 0u);
  EXPECT_EQ(limiter.queued(), 0u);
}

TEST(ConcurrencyLimiter, QueueIsBounded) {
  ConcurrencyLimiter limiter(1, 2);
  ASSERT_TRUE(limiter.try_acquire());
  EXPECT_TRUE(limiter.enqueue([](bool) {}));
  EXPECT_TRUE(limiter.enqueue([](bool) {}));
  EXPECT_FALSE(limiter.enqueue([](bool) {}));
  EXPECT_EQ(limiter.queue_full(), 1u);
}

TEST(ConcurrencyLimiter, CancelledWaiterIsNeverGranted) {
  ConcurrencyLimiter limiter(1, 4);
  ASSERT_TRUE(limiter.try_acquire());
  bool first_called = false;
  bool second_granted = false;
  const auto first = limiter.enqueue([&](bool) { first_called = true; });
  ASSERT_TRUE(limiter.enqueue([&](bool ok) { second_granted = ok; }));
  EXPECT_TRUE(limiter.cancel(*first));
  EXPECT_FALSE(limiter.cancel(*first));
  EXPECT_EQ(limiter.cancelled(), 1u);
  limiter.release();
  EXPECT_FALSE(first_called);
  EXPECT_TRUE(second_granted);
}

TEST(ConcurrencyLimiter, EnqueueWithAFreeSlotGrantsAtOnce) {
  ConcurrencyLimiter limiter(1, 4);
  bool granted = false;
  const auto id = limiter.enqueue([&](bool ok) { granted = ok; });
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(granted);
  EXPECT_FALSE(limiter.cancel(*id));
  EXPECT_EQ(limiter.in_flight(), 1u);
}

TEST(ConcurrencyLimiter, DestructionDeniesWaiters) {
  int denied = 0;
  {
    ConcurrencyLimiter limiter(1, 4);
    ASSERT_TRUE(limiter.try_acquire());
    limiter.enqueue([&](bool ok) { denied += ok ? 0 : 1; });
  }
  EXPECT_EQ(denied, 1);
}

TEST(ConcurrencyLimiter, NeverExceedsMaxUnderConcurrency) {
  constexpr uint32_t kMax = 3;
  auto limiter = std::make_unique<ConcurrencyLimiter>(kMax, 64);
  std::atomic<int> holders{0};
  std::atomic<int> peak{0};
  std::atomic<int> served{0};
  auto hold = [&] {
    const int now = holders.fetch_add(1) + 1;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    holders.fetch_sub(1);
    served.fetch_add(1);
    limiter->release();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        if (limiter->try_acquire()) {
          hold();
        } else if (!limiter->enqueue([&](bool ok) {
                     if (ok) hold();
                   })) {
          served.fetch_add(1);  // turned away
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  // Every queued waiter is granted eventually, since each holder releases.
  EXPECT_EQ(limiter->queued(), 0u);
  EXPECT_EQ(limiter->in_flight(), 0u);
  EXPECT_EQ(served.load(), 4 * 5000);
  EXPECT_LE(peak.load(), int(kMax));
}

}  // namespace
}  // namespace sluice::resilience
