#include "resilience/sliding_window.hpp"

#include "observe/metrics/sharded.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

TEST(SlidingWindow, CountsOutcomesInsideTheInterval) {
  FakeClock clock;
  SlidingWindow w(milliseconds(1000), 10);
  w.record(clock.now(), false, false, milliseconds(5));
  w.record(clock.now(), true, false, milliseconds(15));
  w.record(clock.now(), true, true, milliseconds(40));
  const WindowStats s = w.stats(clock.now());
  EXPECT_EQ(s.total, 3u);
  EXPECT_EQ(s.errors, 2u);
  EXPECT_EQ(s.slow, 1u);
  EXPECT_EQ(s.rt_sum, milliseconds(60));
  EXPECT_EQ(s.average_rt(), milliseconds(20));
  EXPECT_DOUBLE_EQ(s.error_ratio(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.slow_ratio(), 1.0 / 3.0);
}

TEST(SlidingWindow, OldBucketsSlideOut) {
  FakeClock clock(SteadyTime{} + std::chrono::hours(1));  // aligned on bucket boundaries
  SlidingWindow w(milliseconds(1000), 4);                 // 250 ms buckets
  w.record(clock.now(), true, false, {});                 // bucket [0, 250)
  clock.advance(milliseconds(300));
  w.record(clock.now(), false, false, {});  // bucket [250, 500)
  EXPECT_EQ(w.stats(clock.now()).total, 2u);
  clock.advance(milliseconds(700));  // t = 1000: the first bucket is a full interval old
  WindowStats s = w.stats(clock.now());
  EXPECT_EQ(s.total, 1u);
  EXPECT_EQ(s.errors, 0u);
  clock.advance(milliseconds(250));  // t = 1250: the second one too
  EXPECT_EQ(w.stats(clock.now()).total, 0u);
}

TEST(SlidingWindow, StaleBucketIsRecycledOnRecord) {
  FakeClock clock(SteadyTime{} + std::chrono::hours(1));
  SlidingWindow w(milliseconds(100), 1);
  for (int i = 0; i < 5; ++i)
    w.record(clock.now(), true, false, {});
  clock.advance(milliseconds(100));
  w.record(clock.now(), false, false, {});
  const WindowStats s = w.stats(clock.now());
  EXPECT_EQ(s.total, 1u);
  EXPECT_EQ(s.errors, 0u);
}

TEST(SlidingWindow, LateRecordForAnOlderWindowIsDropped) {
  FakeClock clock(SteadyTime{} + std::chrono::hours(1));
  SlidingWindow w(milliseconds(100), 1);
  const SteadyTime old = clock.now();
  clock.advance(milliseconds(100));
  w.record(clock.now(), false, false, {});
  w.record(old, true, false, {});
  EXPECT_EQ(w.stats(clock.now()).errors, 0u);
}

TEST(SlidingWindow, ResetForgetsEverything) {
  FakeClock clock;
  SlidingWindow w(milliseconds(1000), 2);
  w.record(clock.now(), true, true, milliseconds(1));
  w.reset();
  EXPECT_EQ(w.stats(clock.now()).total, 0u);
  w.record(clock.now(), false, false, milliseconds(1));
  EXPECT_EQ(w.stats(clock.now()).total, 1u);
  EXPECT_EQ(w.stats(clock.now()).errors, 0u);
}

TEST(SlidingWindow, RejectsBadGeometry) {
  EXPECT_THROW(SlidingWindow(milliseconds(1000), 0), std::invalid_argument);
  EXPECT_THROW(SlidingWindow(Nanos(3), 4), std::invalid_argument);
}

TEST(SlidingWindow, ConcurrentRecordsAreAllCountedWithinOneWindow) {
  FakeClock clock;
  SlidingWindow w(milliseconds(1000), 4);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Two workers that own their shards (plain adds), two threads sharing one (atomic adds).
      if (t < 2) observe::claim_shard_index(std::size_t(t));
      for (int i = 0; i < kPerThread; ++i)
        w.record(clock.now(), i % 2 == 0, false, Nanos(1));
    });
  }
  for (auto& t : threads)
    t.join();
  const WindowStats s = w.stats(clock.now());
  EXPECT_EQ(s.total, uint64_t(kThreads * kPerThread));
  EXPECT_EQ(s.errors, uint64_t(kThreads * kPerThread / 2));
  EXPECT_EQ(s.rt_sum, Nanos(kThreads * kPerThread));
}

TEST(SlidingWindow, ConcurrentRecyclingKeepsFiguresSane) {
  FakeClock clock;
  SlidingWindow w(milliseconds(10), 2);
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    for (int i = 0; i < 2000; ++i)
      clock.advance(milliseconds(1));
    stop = true;
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        w.record(clock.now(), true, false, Nanos(1));
        const WindowStats s = w.stats(clock.now());
        // Counters of one bucket are read one by one, so in-flight records may skew them a
        // little; a torn recycle would skew them by far more.
        EXPECT_LE(s.errors, s.total + 8);
        EXPECT_LE(s.total, s.errors + 8);
      }
    });
  }
  ticker.join();
  for (auto& t : threads)
    t.join();
}

namespace shards {

// Runs fn on a fresh thread that claimed worker shard `worker`, as a gateway worker does.
template <class Fn>
void on_worker(std::size_t worker, Fn fn) {
  std::thread([&] {
    observe::claim_shard_index(worker);
    fn();
  }).join();
}

// Each worker counts in its own shard; stats() is the exact sum over all of them and over the
// shared shard of threads that claimed none.
TEST(SlidingWindowShards, StatsSumEveryWorkersShardExactly) {
  FakeClock clock(SteadyTime{} + std::chrono::hours(1));
  SlidingWindow w(milliseconds(1000), 4);
  on_worker(0, [&] {
    for (int i = 0; i < 30; ++i)
      w.record(clock.now(), i % 3 == 0, false, Nanos(2));
  });
  on_worker(1, [&] {
    for (int i = 0; i < 20; ++i)
      w.record(clock.now(), false, true, Nanos(5));
  });
  w.record(clock.now(), true, true, Nanos(7));  // this thread: the shared shard
  const WindowStats s = w.stats(clock.now());
  EXPECT_EQ(s.total, 51u);
  EXPECT_EQ(s.errors, 11u);
  EXPECT_EQ(s.slow, 21u);
  EXPECT_EQ(s.rt_sum, Nanos(30 * 2 + 20 * 5 + 7));
}

// A bucket rolls over in each shard on its own: a worker whose bucket slot still holds the
// previous window's counts (it recorded nothing since) does not add them to the new window,
// and its next record recycles the slot.
TEST(SlidingWindowShards, EachShardRollsOverItsBuckets) {
  FakeClock clock(SteadyTime{} + std::chrono::hours(1));
  SlidingWindow w(milliseconds(1000), 2);  // 500 ms buckets
  on_worker(0, [&] {
    for (int i = 0; i < 8; ++i)
      w.record(clock.now(), true, false, {});  // bucket [0, 500)
  });
  clock.advance(milliseconds(1000));  // the same slot, the next window: [1000, 1500)
  on_worker(1, [&] { w.record(clock.now(), false, false, {}); });
  WindowStats s = w.stats(clock.now());
  EXPECT_EQ(s.total, 1u);
  EXPECT_EQ(s.errors, 0u);
  on_worker(0, [&] { w.record(clock.now(), false, false, {}); });
  s = w.stats(clock.now());
  EXPECT_EQ(s.total, 2u);
  EXPECT_EQ(s.errors, 0u);
  EXPECT_EQ(w.bucket_start(clock.now()), w.bucket_start(clock.now() + milliseconds(499)));
  EXPECT_NE(w.bucket_start(clock.now()), w.bucket_start(clock.now() + milliseconds(500)));
}

TEST(SlidingWindowShards, ResetForgetsEveryShard) {
  FakeClock clock;
  SlidingWindow w(milliseconds(1000), 1);
  on_worker(0, [&] { w.record(clock.now(), true, false, {}); });
  on_worker(1, [&] { w.record(clock.now(), true, false, {}); });
  w.record(clock.now(), true, false, {});
  w.reset();
  EXPECT_EQ(w.stats(clock.now()).total, 0u);
  on_worker(1, [&] { w.record(clock.now(), false, false, {}); });
  EXPECT_EQ(w.stats(clock.now()).total, 1u);
  EXPECT_EQ(w.stats(clock.now()).errors, 0u);
}

}  // namespace shards

}  // namespace
}  // namespace sluice::resilience
