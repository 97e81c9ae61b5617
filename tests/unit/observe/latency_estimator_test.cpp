#include "observe/latency_estimator.hpp"

#include "observe/metrics/sharded.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

namespace sluice::observe {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using TimePoint = LatencyEstimator::TimePoint;

const TimePoint kStart = TimePoint{} + std::chrono::hours(1);

TEST(LatencyEstimator, BucketsAreContiguousAndWithinOneSixteenth) {
  uint64_t expected_lower = 0;
  for (std::size_t i = 0; i < LatencyEstimator::kBuckets; ++i) {
    const uint64_t lo = LatencyEstimator::bucket_lower(i);
    const uint64_t w = LatencyEstimator::bucket_width(i);
    ASSERT_EQ(lo, expected_lower) << i;
    ASSERT_EQ(LatencyEstimator::bucket_index(lo), i);
    ASSERT_EQ(LatencyEstimator::bucket_index(lo + w - 1), i);
    if (lo >= 16) {
      ASSERT_LE(w * 16, lo);
    }
    expected_lower = lo + w;
  }
  EXPECT_EQ(LatencyEstimator::bucket_index(uint64_t{1} << 40), LatencyEstimator::kBuckets - 1);
  EXPECT_EQ(LatencyEstimator::bucket_index(~uint64_t{0}), LatencyEstimator::kBuckets - 1);
}

TEST(LatencyEstimator, EmptyGivesZeroAndP50) {
  LatencyEstimator est;
  EXPECT_EQ(est.quantile(kStart, 0.99), nanoseconds(0));
  EXPECT_EQ(est.snapshot(kStart).count, 0u);
  EXPECT_EQ(est.classify(kStart, seconds(5)), LatencyBucket::kP50);
}

TEST(LatencyEstimator, QuantilesOfAUniformSpreadWithinDocumentedError) {
  LatencyEstimator est(seconds(10));
  // 1..1000 ms, one each: p50 = 500 ms, p95 = 950 ms, p99 = 990 ms.
  for (int i = 1; i <= 1000; ++i)
    est.record(kStart, milliseconds(i));
  const auto s = est.snapshot(kStart);
  EXPECT_EQ(s.count, 1000u);
  auto near = [](nanoseconds got, double want_ms) {
    return std::abs(double(got.count()) / 1e6 - want_ms) <= want_ms / 32 + 1e-9;
  };
  EXPECT_TRUE(near(s.p50, 500)) << s.p50.count();
  EXPECT_TRUE(near(s.p95, 950)) << s.p95.count();
  EXPECT_TRUE(near(s.p99, 990)) << s.p99.count();
  EXPECT_TRUE(near(est.quantile(kStart, 1.0), 1000));
  EXPECT_TRUE(near(est.quantile(kStart, 0.0), 1));
}

TEST(LatencyEstimator, RandomDataWithinRelativeError) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(std::log(2e6), 1.0);  // median 2 ms
  std::vector<int64_t> samples;
  LatencyEstimator est;
  for (int i = 0; i < 50000; ++i) {
    const auto v = static_cast<int64_t>(dist(rng));
    samples.push_back(v);
    est.record(kStart, nanoseconds(v));
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.5, 0.9, 0.95, 0.99, 0.999}) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * samples.size())) - 1;
    const double truth = double(samples[rank]);
    const double got = double(est.quantile(kStart, q).count());
    EXPECT_LE(std::abs(got - truth) / truth, 1.0 / 32 + 1e-9) << "q=" << q;
  }
}

TEST(LatencyEstimator, ClassifiesAgainstRecentQuantiles) {
  LatencyEstimator est(seconds(10), milliseconds(0));
  for (int i = 1; i <= 1000; ++i)
    est.record(kStart, milliseconds(i));
  EXPECT_EQ(est.classify(kStart, milliseconds(10)), LatencyBucket::kP50);
  EXPECT_EQ(est.classify(kStart, milliseconds(500)), LatencyBucket::kP50);
  EXPECT_EQ(est.classify(kStart, milliseconds(700)), LatencyBucket::kP95);
  EXPECT_EQ(est.classify(kStart, milliseconds(985)), LatencyBucket::kP99);
  EXPECT_EQ(est.classify(kStart, milliseconds(1500)), LatencyBucket::kSlow);
  EXPECT_EQ(to_string(LatencyBucket::kP50), "p50");
  EXPECT_EQ(to_string(LatencyBucket::kP95), "p95");
  EXPECT_EQ(to_string(LatencyBucket::kP99), "p99");
  EXPECT_EQ(to_string(LatencyBucket::kSlow), "slow");
}

TEST(LatencyEstimator, ClassifyCacheRefreshesAfterInterval) {
  LatencyEstimator est(seconds(10), seconds(1));
  for (int i = 0; i < 100; ++i)
    est.record(kStart, milliseconds(1));
  EXPECT_EQ(est.classify(kStart, milliseconds(50)), LatencyBucket::kSlow);
  for (int i = 0; i < 10000; ++i)
    est.record(kStart, milliseconds(100));
  // Cached quantiles are still the old ones until the refresh interval passes.
  EXPECT_EQ(est.classify(kStart + milliseconds(500), milliseconds(50)), LatencyBucket::kSlow);
  EXPECT_EQ(est.classify(kStart + milliseconds(1000), milliseconds(50)), LatencyBucket::kP50);
}

TEST(LatencyEstimator, RecentP99IsTheCachedQuantile) {
  LatencyEstimator est(seconds(10), milliseconds(100));
  EXPECT_EQ(est.recent_p99(kStart), nanoseconds(0));  // no sample
  for (int i = 0; i < 100; ++i)
    est.record(kStart, milliseconds(1));
  // The next refresh, one period later, sees the first samples.
  EXPECT_EQ(est.recent_p99(kStart + milliseconds(100)), est.quantile(kStart, 0.99));
  for (int i = 0; i < 10000; ++i)
    est.record(kStart, milliseconds(100));
  // Until the refresh period passes the cached p99 stays; then it follows the new samples.
  EXPECT_LT(est.recent_p99(kStart + milliseconds(150)), milliseconds(2));
  const auto later = est.recent_p99(kStart + milliseconds(200));
  EXPECT_EQ(later, est.quantile(kStart + milliseconds(200), 0.99));
  EXPECT_GT(later, milliseconds(95));
}

TEST(LatencyEstimator, OldWindowsAgeOut) {
  LatencyEstimator est(seconds(10));
  for (int i = 0; i < 100; ++i)
    est.record(kStart, seconds(1));
  EXPECT_EQ(est.snapshot(kStart + seconds(15)).count, 100u);  // previous window still counts
  for (int i = 0; i < 10; ++i)
    est.record(kStart + seconds(15), milliseconds(1));
  auto s = est.snapshot(kStart + seconds(15));
  EXPECT_EQ(s.count, 110u);
  // Two windows later the 1 s samples are gone.
  for (int i = 0; i < 10; ++i)
    est.record(kStart + seconds(25), milliseconds(1));
  s = est.snapshot(kStart + seconds(25));
  EXPECT_EQ(s.count, 20u);
  EXPECT_LT(s.p99, milliseconds(2));
  EXPECT_EQ(est.snapshot(kStart + seconds(60)).count, 0u);
}

// A window number computed once (window_of) and given to several estimators of that length
// lands each sample in the window record(now, ...) would, also after a new window.
TEST(LatencyEstimator, AWindowNumberComputedOnceServesEstimatorsOfItsLength) {
  LatencyEstimator a(seconds(10)), b(seconds(10));
  for (const TimePoint t : {kStart, kStart + seconds(15), kStart + seconds(25)}) {
    const int64_t window = LatencyEstimator::window_of(t, seconds(10));
    with_shard_writer([&](auto w) {
      a.record_in_window(w, window, milliseconds(1));
      b.record_in_window(w, window, milliseconds(2));
    });
  }
  // Windows of 10 s: at 25 s the samples of 15 s and 25 s are recent, the one of 0 s is not.
  EXPECT_EQ(a.snapshot(kStart + seconds(25)).count, 2u);
  EXPECT_EQ(b.snapshot(kStart + seconds(25)).count, 2u);
  EXPECT_EQ(b.snapshot(kStart + seconds(25)).p50, a.snapshot(kStart + seconds(25)).p50 * 2);
}

TEST(LatencyEstimator, ConcurrentRecordsAreCounted) {
  LatencyEstimator est(seconds(10));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50000; ++i)
        est.record(kStart, microseconds(100 + i % 100));
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(est.snapshot(kStart).count, 200000u);
}

// Workers claim shards 0, 1, ... (as the gateway's worker threads do): each writes counters of
// its own, allocated on its first record; a read sums them, windows aged out shard by shard.
TEST(LatencyEstimator, EachWorkerRecordsIntoItsOwnShard) {
  ASSERT_GE(shard_count(), 2u);
  LatencyEstimator est(seconds(10));
  EXPECT_EQ(est.shards_in_use(), 0u);
  auto worker = [&](std::size_t shard, TimePoint at, nanoseconds latency, int n) {
    std::thread([&, shard, at, latency, n] {
      claim_shard_index(shard);
      EXPECT_EQ(shard_index() & (shard_count() - 1), shard);
      EXPECT_TRUE(sole_writer(shard_index()));
      for (int i = 0; i < n; ++i)
        est.record(at, latency);
    }).join();
  };
  worker(0, kStart, milliseconds(1), 900);
  EXPECT_EQ(est.shards_in_use(), 1u);
  worker(1, kStart, milliseconds(100), 100);
  EXPECT_EQ(est.shards_in_use(), 2u);
  auto s = est.snapshot(kStart);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_LT(s.p50, milliseconds(2));   // shard 0's samples
  EXPECT_GT(s.p99, milliseconds(90));  // shard 1's
  // Shard 1 moves on two windows; shard 0's samples age out of the sum all the same.
  worker(1, kStart + seconds(25), milliseconds(5), 10);
  s = est.snapshot(kStart + seconds(25));
  EXPECT_EQ(s.count, 10u);
  EXPECT_EQ(est.shards_in_use(), 2u);
}

}  // namespace
}  // namespace sluice::observe
