// The circuit breaker with outcomes recorded by several workers, each in its own shard of the
// window: the same trips and recoveries as with one shared window (Sentinel's and
// Resilience4j's semantics), although a worker sums the shards only when an outcome may trip.
#include <gtest/gtest.h>

#include <cstddef>
#include <thread>
#include <vector>

#include "observe/metrics/sharded.hpp"
#include "resilience/circuit_breaker.hpp"
#include "resilience/trip_bound.hpp"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

CircuitBreakerConfig config(Strategy strategy, double threshold, uint32_t min_requests) {
  CircuitBreakerConfig c;
  c.strategy = strategy;
  c.threshold = threshold;
  c.min_request_amount = min_requests;
  c.retry_timeout = milliseconds(5000);
  c.stat_interval = milliseconds(1000);
  c.max_allowed_rt = milliseconds(100);
  return c;
}

// Sends n requests through the breaker on a fresh thread that claimed worker shard `worker`
// (as a gateway worker does; the same worker's later calls reuse its shard), all with the
// same outcome. Returns how many were admitted.
int on_worker(std::size_t worker, CircuitBreaker& b, int n, bool is_error,
              Nanos rt = milliseconds(1)) {
  int admitted = 0;
  std::thread([&] {
    observe::claim_shard_index(worker);
    for (int i = 0; i < n; ++i) {
      const Permit p = b.try_acquire();
      if (!p) continue;
      ++admitted;
      b.on_complete(p, rt, is_error);
    }
  }).join();
  return admitted;
}

// The breaker is still closed, and one more success on `worker` trips it.
void expect_next_success_trips(CircuitBreaker& b, std::size_t worker, const char* why) {
  EXPECT_EQ(b.state(), State::kClosed) << "before: " << why;
  on_worker(worker, b, 1, false);
  EXPECT_EQ(b.state(), State::kOpen) << why;
}

TEST(TripBound, MayTripOnlyWhereSomeTotalCanTrip) {
  // error ratio 0.5, minimum 10
  EXPECT_FALSE(may_trip(true, 0.5, 10, 0, 1));
  EXPECT_TRUE(may_trip(true, 0.5, 10, 6, 7));    // a total of 10 would trip: 0.6
  EXPECT_FALSE(may_trip(true, 0.5, 10, 5, 7));   // at best 5 / 10
  EXPECT_FALSE(may_trip(true, 0.5, 10, 6, 12));  // at best 6 / 12
  EXPECT_TRUE(may_trip(true, 0.5, 10, 7, 12));
  EXPECT_TRUE(may_trip(true, 0.0, 1, 1, 1000));  // threshold 0: any bad outcome
  EXPECT_FALSE(may_trip(true, 1.0, 1, 5, 5));    // 1.0 never trips
  // error count 3
  EXPECT_FALSE(may_trip(false, 3, 5, 2, 100));
  EXPECT_TRUE(may_trip(false, 3, 5, 3, 1));
}

// Another worker's errors leave the window below min_request_amount; this worker's success
// brings it there, and trips it, although this worker's last sum had no error in it.
TEST(CircuitBreakerShards, ASuccessTripsOnAnotherWorkersErrors) {
  CircuitBreaker b("t", config(Strategy::kErrorRatio, 0.5, 10));
  EXPECT_EQ(on_worker(0, b, 3, false), 3);
  EXPECT_EQ(on_worker(1, b, 6, true), 6);
  expect_next_success_trips(b, 0, "9 < min_request_amount, then 6 errors out of 10");
}

TEST(CircuitBreakerShards, TheWorkersOwnSuccessesReachTheMinimum) {
  CircuitBreaker b("t", config(Strategy::kErrorRatio, 0.5, 10));
  on_worker(1, b, 6, true);
  on_worker(0, b, 3, false);
  expect_next_success_trips(b, 0, "6 errors out of 10");
}

// Successes only lower a ratio, but buckets sliding out can raise it: after the bucket full of
// successes leaves the window, the next success (Sentinel: the next completion) trips.
TEST(CircuitBreakerShards, ASuccessAfterABucketSlidOutTrips) {
  FakeClock clock(SteadyTime{} + std::chrono::hours(1));
  CircuitBreakerConfig c = config(Strategy::kErrorRatio, 0.5, 10);
  c.stat_sliding_window_bucket_count = 2;  // 500 ms buckets
  CircuitBreaker b("t", c, clock);
  on_worker(0, b, 100, false);  // [0, 500)
  clock.advance(milliseconds(600));
  on_worker(1, b, 6, true);  // [500, 1000)
  on_worker(0, b, 4, false);
  EXPECT_EQ(b.state(), State::kClosed) << "6 errors out of 110";
  clock.advance(milliseconds(600));  // t = 1200: [0, 500) is out
  expect_next_success_trips(b, 0, "6 errors out of 11");
}

TEST(CircuitBreakerShards, ErrorCountTripsWhenAnotherWorkerReachesTheMinimum) {
  CircuitBreaker b("t", config(Strategy::kErrorCount, 3, 5));
  on_worker(1, b, 3, true);
  on_worker(0, b, 1, false);
  expect_next_success_trips(b, 0, "4 < min_request_amount, then 3 errors out of 5");
}

TEST(CircuitBreakerShards, SlowRatioCountsSlowOutcomesFromEveryWorker) {
  CircuitBreaker b("t", config(Strategy::kSlowRequestRatio, 0.5, 10));
  on_worker(0, b, 20, /*is_error=*/true);  // errors, all fast: not counted against it
  EXPECT_EQ(b.state(), State::kClosed);
  on_worker(1, b, 21, false, milliseconds(200));  // 21 slow out of 41
  EXPECT_EQ(b.state(), State::kOpen);
}

// Trip, probe, close and trip again, with every outcome from one of two workers: the window
// starts empty after the close (the workers' earlier sums are of the previous epoch).
TEST(CircuitBreakerShards, TripsRecoversAndTripsAgain) {
  FakeClock clock;
  CircuitBreaker b("t", config(Strategy::kErrorRatio, 0.5, 10), clock);
  on_worker(0, b, 50, false);
  on_worker(1, b, 49, true);
  EXPECT_EQ(b.state(), State::kClosed) << "49 of 99";
  on_worker(1, b, 2, true);
  EXPECT_EQ(b.state(), State::kOpen) << "51 of 101";
  EXPECT_EQ(on_worker(0, b, 5, false), 0);
  clock.advance(milliseconds(5000));
  EXPECT_EQ(on_worker(0, b, 1, false), 1);  // the probe passes
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.snapshot().window.total, 0u);
  on_worker(1, b, 6, true);
  on_worker(0, b, 3, false);
  expect_next_success_trips(b, 0, "6 errors out of 10 after the close");
}

// Two workers and one other thread, at once, each completing n requests with the same outcome.
void on_three_threads(CircuitBreaker& b, int n, bool is_error) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      if (t < 2) observe::claim_shard_index(std::size_t(t));
      for (int i = 0; i < n; ++i)
        b.on_complete(b.try_acquire(), milliseconds(1), is_error);
    });
  }
  for (auto& t : threads)
    t.join();
}

// Workers and other threads at once: the totals are exact, and the last error always sees
// every earlier one (each is counted before it is announced), so the count trips.
TEST(CircuitBreakerShards, ConcurrentWorkersTripOnTheSummedCount) {
  CircuitBreaker b("t", config(Strategy::kErrorCount, 6, 1));
  on_three_threads(b, 2000, false);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.snapshot().window.total, 6000u);
  on_three_threads(b, 2, true);
  EXPECT_EQ(b.state(), State::kOpen);
}

}  // namespace
}  // namespace sluice::resilience
