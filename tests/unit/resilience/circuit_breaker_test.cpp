#include "resilience/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

CircuitBreakerConfig error_ratio(double threshold, uint32_t min_requests = 10) {
  CircuitBreakerConfig c;
  c.strategy = Strategy::kErrorRatio;
  c.threshold = threshold;
  c.min_request_amount = min_requests;
  c.retry_timeout = milliseconds(5000);
  c.stat_interval = milliseconds(1000);
  return c;
}

// Sends n requests through the breaker, all with the same outcome.
void run(CircuitBreaker& b, int n, bool is_error, Nanos rt = milliseconds(1)) {
  for (int i = 0; i < n; ++i) {
    const Permit p = b.try_acquire();
    ASSERT_TRUE(p.allowed);
    b.on_complete(p, rt, is_error);
  }
}

// Trips `b` (error ratio 0.5, min 10) and lets its retry timeout pass.
void trip_and_wait(CircuitBreaker& b, FakeClock& clock) {
  run(b, 10, true);
  ASSERT_EQ(b.state(), State::kOpen);
  clock.advance(b.config().retry_timeout);
}

TEST(CircuitBreakerConfig, ValidateNamesTheField) {
  EXPECT_EQ(error_ratio(0.5).validate(), "");
  EXPECT_NE(error_ratio(1.5).validate().find("threshold"), std::string::npos);

  CircuitBreakerConfig c = error_ratio(0.5);
  c.strategy = Strategy::kErrorCount;
  EXPECT_NE(c.validate().find("error count"), std::string::npos);
  c.threshold = 3;
  EXPECT_EQ(c.validate(), "");

  c = error_ratio(0.5);
  c.strategy = Strategy::kSlowRequestRatio;
  EXPECT_NE(c.validate().find("max_allowed_rt"), std::string::npos);

  c = error_ratio(0.5);
  c.stat_sliding_window_bucket_count = 3;
  EXPECT_NE(c.validate().find("stat_sliding_window_bucket_count"), std::string::npos);

  c = error_ratio(0.5);
  c.retry_timeout = milliseconds(0);
  EXPECT_NE(c.validate().find("retry_timeout"), std::string::npos);

  c = error_ratio(0.5);
  c.half_open_max_probes = 0;
  EXPECT_NE(c.validate().find("half_open_max_probes"), std::string::npos);

  EXPECT_THROW(CircuitBreaker("x", error_ratio(2.0)), std::invalid_argument);
}

TEST(CircuitBreaker, ErrorRatioTripsAboveThresholdOnly) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  run(b, 5, false);
  run(b, 5, true);  // 5/10 = 0.5, not above
  EXPECT_EQ(b.state(), State::kClosed);
  run(b, 1, true);  // 6/11 > 0.5
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_FALSE(b.try_acquire().allowed);
}

TEST(CircuitBreaker, NothingTripsBelowMinRequestAmount) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.1, 20), clock);
  run(b, 19, true);
  EXPECT_EQ(b.state(), State::kClosed);
  run(b, 1, false);  // the 20th request, a success, brings the window to the minimum
  EXPECT_EQ(b.state(), State::kOpen);
}

TEST(CircuitBreaker, ErrorCountTripsAtThreshold) {
  FakeClock clock;
  CircuitBreakerConfig c = error_ratio(0.5, 5);
  c.strategy = Strategy::kErrorCount;
  c.threshold = 3;
  CircuitBreaker b("svc", c, clock);
  run(b, 2, true);
  run(b, 2, false);
  EXPECT_EQ(b.state(), State::kClosed);  // total 4 < 5
  run(b, 1, false);
  EXPECT_EQ(b.state(), State::kClosed);  // 2 errors < 3
  run(b, 1, true);
  EXPECT_EQ(b.state(), State::kOpen);  // 3 errors >= 3
}

TEST(CircuitBreaker, SlowRequestRatioUsesMaxAllowedRt) {
  FakeClock clock;
  CircuitBreakerConfig c = error_ratio(0.5, 4);
  c.strategy = Strategy::kSlowRequestRatio;
  c.max_allowed_rt = milliseconds(100);
  CircuitBreaker b("svc", c, clock);
  run(b, 2, true, milliseconds(100));  // errors are not slow; exactly max_allowed_rt is not slow
  run(b, 2, false, milliseconds(101));
  EXPECT_EQ(b.state(), State::kClosed);  // 2/4 slow
  run(b, 1, false, milliseconds(500));
  EXPECT_EQ(b.state(), State::kOpen);  // 3/5 slow
}

TEST(CircuitBreaker, WindowSlides) {
  FakeClock clock;
  CircuitBreakerConfig c = error_ratio(0.5, 10);
  c.stat_interval = milliseconds(1000);
  c.stat_sliding_window_bucket_count = 10;
  CircuitBreaker b("svc", c, clock);
  run(b, 9, true);
  clock.advance(milliseconds(1000));  // those errors leave the window
  run(b, 9, false);
  run(b, 1, true);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.snapshot().window.total, 10u);
}

TEST(CircuitBreaker, OpenRejectsUntilRetryTimeoutThenProbes) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  run(b, 10, true);
  ASSERT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.retry_after(clock.now()), milliseconds(5000));
  clock.advance(milliseconds(4999));
  EXPECT_FALSE(b.try_acquire().allowed);
  EXPECT_EQ(b.retry_after(clock.now()), milliseconds(1));
  clock.advance(milliseconds(1));
  const Permit probe = b.try_acquire();
  EXPECT_TRUE(probe.allowed);
  EXPECT_EQ(probe.state, State::kHalfOpen);
  EXPECT_EQ(b.state(), State::kHalfOpen);
  EXPECT_EQ(b.retry_after(clock.now()), Nanos(0));
  EXPECT_EQ(b.snapshot().rejected, 1u);
}

TEST(CircuitBreaker, HalfOpenLimitsProbesInFlight) {
  FakeClock clock;
  CircuitBreakerConfig c = error_ratio(0.5);
  c.half_open_max_probes = 2;
  CircuitBreaker b("svc", c, clock);
  trip_and_wait(b, clock);
  const Permit p1 = b.try_acquire();
  const Permit p2 = b.try_acquire();
  EXPECT_TRUE(p1.allowed);
  EXPECT_TRUE(p2.allowed);
  const Permit p3 = b.try_acquire();
  EXPECT_FALSE(p3.allowed);
  EXPECT_EQ(p3.state, State::kHalfOpen);
  EXPECT_EQ(b.snapshot().probes_in_flight, 2u);
  b.on_abandon(p1);  // a cancelled probe frees its slot without deciding
  EXPECT_EQ(b.state(), State::kHalfOpen);
  EXPECT_TRUE(b.try_acquire().allowed);
  EXPECT_FALSE(b.try_acquire().allowed);
}

TEST(CircuitBreaker, ProbeSuccessClosesWithAnEmptyWindow) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  trip_and_wait(b, clock);
  const Permit probe = b.try_acquire();
  b.on_complete(probe, milliseconds(1), false);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.snapshot().window.total, 0u);
  EXPECT_TRUE(b.try_acquire().allowed);
}

TEST(CircuitBreaker, ProbeFailureReopensAndRestartsTheTimeout) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  trip_and_wait(b, clock);
  const Permit probe = b.try_acquire();
  clock.advance(milliseconds(300));
  b.on_complete(probe, milliseconds(300), true);
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.retry_after(clock.now()), milliseconds(5000));
  clock.advance(milliseconds(4999));
  EXPECT_FALSE(b.try_acquire().allowed);
  clock.advance(milliseconds(1));
  EXPECT_TRUE(b.try_acquire().allowed);
}

TEST(CircuitBreaker, SlowProbeCountsAsFailureForSlowStrategy) {
  FakeClock clock;
  CircuitBreakerConfig c = error_ratio(0.5, 2);
  c.strategy = Strategy::kSlowRequestRatio;
  c.max_allowed_rt = milliseconds(50);
  CircuitBreaker b("svc", c, clock);
  run(b, 2, false, milliseconds(80));
  ASSERT_EQ(b.state(), State::kOpen);
  clock.advance(c.retry_timeout);
  Permit probe = b.try_acquire();
  b.on_complete(probe, milliseconds(80), false);
  EXPECT_EQ(b.state(), State::kOpen);
  clock.advance(c.retry_timeout);
  probe = b.try_acquire();
  b.on_complete(probe, milliseconds(10), true);  // fast: a success, even if an error
  EXPECT_EQ(b.state(), State::kClosed);
}

TEST(CircuitBreaker, LateCompletionsFromAnOlderEpochAreIgnored) {
  FakeClock clock;
  CircuitBreakerConfig c = error_ratio(0.5);
  c.half_open_max_probes = 2;
  CircuitBreaker b("svc", c, clock);
  // Requests admitted while closed, still running when the breaker trips.
  std::vector<Permit> stragglers;
  for (int i = 0; i < 5; ++i)
    stragglers.push_back(b.try_acquire());
  run(b, 10, true);
  ASSERT_EQ(b.state(), State::kOpen);
  clock.advance(c.retry_timeout);
  const Permit probe1 = b.try_acquire();
  const Permit probe2 = b.try_acquire();
  // A success from before the trip must not close the half-open breaker.
  b.on_complete(stragglers[0], milliseconds(1), false);
  EXPECT_EQ(b.state(), State::kHalfOpen);
  b.on_complete(probe1, milliseconds(1), false);
  ASSERT_EQ(b.state(), State::kClosed);
  // The other probe of the decided epoch is late now: its failure neither reopens nor counts.
  b.on_complete(probe2, milliseconds(1), true);
  for (size_t i = 1; i < stragglers.size(); ++i)
    b.on_complete(stragglers[i], {}, true);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.snapshot().window.total, 0u);
  // A late abandon does not free a slot in a newer half-open epoch either.
  b.on_abandon(probe1);
  EXPECT_EQ(b.state(), State::kClosed);
}

TEST(CircuitBreaker, ListenersSeeEveryTransitionInOrder) {
  FakeClock clock;
  CircuitBreaker b("orders", error_ratio(0.5), clock);
  std::vector<std::string> seen;
  b.add_listener([&](std::string_view name, State from, State to) {
    seen.push_back(std::string(name) + ":" + std::string(to_string(from)) + "->" +
                   std::string(to_string(to)));
    EXPECT_EQ(b.state(), to);  // the breaker is usable from a listener
  });
  trip_and_wait(b, clock);
  Permit probe = b.try_acquire();
  b.on_complete(probe, {}, true);
  clock.advance(b.config().retry_timeout);
  probe = b.try_acquire();
  b.on_complete(probe, {}, false);
  const std::vector<std::string> want = {
      "orders:closed->open",    "orders:open->half_open",   "orders:half_open->open",
      "orders:open->half_open", "orders:half_open->closed",
  };
  EXPECT_EQ(seen, want);
}

TEST(CircuitBreaker, ListenerMayChangeTheBreaker) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  std::vector<State> seen;
  b.add_listener([&](std::string_view, State, State to) {
    seen.push_back(to);
    if (to == State::kOpen && !b.is_forced()) b.force_closed();
  });
  run(b, 10, true);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_TRUE(b.is_forced());
  EXPECT_EQ(seen, (std::vector<State>{State::kOpen, State::kClosed}));
}

TEST(CircuitBreaker, ForcedOpenHoldsUntilReset) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  b.force_open();
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_TRUE(b.is_forced());
  clock.advance(std::chrono::hours(1));
  EXPECT_FALSE(b.try_acquire().allowed);
  EXPECT_EQ(b.retry_after(clock.now()), b.config().retry_timeout);
  b.reset();
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_FALSE(b.is_forced());
  EXPECT_TRUE(b.try_acquire().allowed);
}

TEST(CircuitBreaker, ForcedClosedNeverTrips) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  b.force_closed();
  run(b, 50, true);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.snapshot().window.errors, 50u);
  b.reset();
  EXPECT_EQ(b.snapshot().window.total, 0u);
  run(b, 10, true);
  EXPECT_EQ(b.state(), State::kOpen);
}

TEST(CircuitBreaker, ResetFromOpenClosesAndInvalidatesPermits) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  const Permit old = b.try_acquire();
  run(b, 10, true);
  b.reset();
  EXPECT_EQ(b.state(), State::kClosed);
  b.on_complete(old, {}, true);
  EXPECT_EQ(b.snapshot().window.total, 0u);
}

TEST(CircuitBreaker, CompletionTimeMayBePassedIn) {
  FakeClock clock;
  CircuitBreakerConfig c = error_ratio(0.5, 2);
  c.stat_sliding_window_bucket_count = 2;
  CircuitBreaker b("svc", c, clock);
  Permit p = b.try_acquire();
  b.on_complete(p, {}, true, clock.now() - milliseconds(1000));  // outside the window
  p = b.try_acquire();
  b.on_complete(p, {}, true, clock.now());
  EXPECT_EQ(b.state(), State::kClosed);
  p = b.try_acquire();
  b.on_complete(p, {}, true, clock.now());
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.retry_after(clock.now()), c.retry_timeout);
}

TEST(CircuitBreaker, SnapshotReportsFigures) {
  FakeClock clock;
  CircuitBreaker b("svc", error_ratio(0.5), clock);
  run(b, 3, true, milliseconds(10));
  run(b, 1, false, milliseconds(30));
  const CircuitBreakerSnapshot s = b.snapshot();
  EXPECT_EQ(s.name, "svc");
  EXPECT_EQ(s.state, State::kClosed);
  EXPECT_EQ(s.window.total, 4u);
  EXPECT_EQ(s.window.errors, 3u);
  EXPECT_EQ(s.window.average_rt(), milliseconds(15));
}

TEST(CircuitBreaker, ConcurrentHalfOpenAdmitsAtMostMaxProbes) {
  FakeClock clock;
  CircuitBreakerConfig c = error_ratio(0.5);
  c.half_open_max_probes = 3;
  CircuitBreaker b("svc", c, clock);
  trip_and_wait(b, clock);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (b.try_acquire().allowed) admitted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(admitted.load(), 3);
  EXPECT_EQ(b.state(), State::kHalfOpen);
}

}  // namespace
}  // namespace sluice::resilience

namespace sluice::resilience {
namespace {

// Share of `n` try_acquire() calls admitted now (outcomes not reported).
double admitted(CircuitBreaker& b, int n) {
  int in = 0;
  for (int i = 0; i < n; ++i)
    in += b.try_acquire().allowed ? 1 : 0;
  return static_cast<double>(in) / n;
}

CircuitBreakerConfig ramping(uint32_t success_probes = 1) {
  CircuitBreakerConfig c = error_ratio(0.5);
  c.half_open_success_probes = success_probes;
  c.half_open_max_probes = 1;
  c.ramp = milliseconds(10'000);
  c.ramp_start_percent = 10;
  c.ramp_min_request_amount = 4;
  return c;
}

// HALF_OPEN with half_open_success_probes = 3: each passing probe frees its slot for the next;
// the third closes; a failing one reopens at once.
TEST(CircuitBreakerRamp, SeveralProbesMustPassBeforeClosing) {
  FakeClock clock;
  CircuitBreaker b("svc", ramping(3), clock);
  trip_and_wait(b, clock);
  for (int i = 1; i <= 2; ++i) {
    const Permit p = b.try_acquire();
    ASSERT_TRUE(p.allowed) << "probe " << i;
    EXPECT_FALSE(b.try_acquire().allowed) << "one probe in flight at a time";
    b.on_complete(p, milliseconds(1), false);
    EXPECT_EQ(b.state(), State::kHalfOpen) << "after " << i << " passing probes";
  }
  b.on_complete(b.try_acquire(), milliseconds(1), false);
  EXPECT_EQ(b.state(), State::kClosed);

  CircuitBreaker c("svc2", ramping(3), clock);
  trip_and_wait(c, clock);
  c.on_complete(c.try_acquire(), milliseconds(1), false);
  c.on_complete(c.try_acquire(), milliseconds(1), true);
  EXPECT_EQ(c.state(), State::kOpen) << "a failing probe reopens";
}

// After the close the admitted share rises from 10 % to 100 % over the ramp.
TEST(CircuitBreakerRamp, TrafficComesBackGradually) {
  FakeClock clock;
  CircuitBreaker b("svc", ramping(), clock);
  trip_and_wait(b, clock);
  b.on_complete(b.try_acquire(), milliseconds(1), false);
  ASSERT_EQ(b.state(), State::kClosed);
  EXPECT_NEAR(b.snapshot().admitted_share, 0.10, 1e-9);
  EXPECT_NEAR(admitted(b, 20000), 0.10, 0.02);
  clock.advance(milliseconds(5000));  // halfway: 10 % + 90 % / 2
  EXPECT_NEAR(b.snapshot().admitted_share, 0.55, 1e-9);
  EXPECT_NEAR(admitted(b, 20000), 0.55, 0.02);
  clock.advance(milliseconds(5000));
  EXPECT_EQ(admitted(b, 1000), 1.0) << "ramp over: everything passes";
  EXPECT_EQ(b.snapshot().admitted_share, 1.0);
  EXPECT_EQ(b.state(), State::kClosed);
}

// While ramping the breaker trips after ramp_min_request_amount outcomes (4), not
// min_request_amount (10): a sick resource is left again at once.
TEST(CircuitBreakerRamp, ReopensAtOnceWhenTheRampFails) {
  FakeClock clock;
  CircuitBreaker b("svc", ramping(), clock);
  trip_and_wait(b, clock);
  b.on_complete(b.try_acquire(), milliseconds(1), false);
  clock.advance(milliseconds(9000));  // 91 % admitted: enough to find four admitted calls
  int reported = 0;
  while (reported < 4) {
    const Permit p = b.try_acquire();
    if (!p.allowed) continue;
    b.on_complete(p, milliseconds(1), /*is_error=*/reported >= 1);  // 3 errors of 4: 75 %
    ++reported;
  }
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.retry_after(clock.now()), milliseconds(5000));
  // The next close ramps again from the start.
  clock.advance(milliseconds(5000));
  b.on_complete(b.try_acquire(), milliseconds(1), false);
  EXPECT_NEAR(b.snapshot().admitted_share, 0.10, 1e-9);
}

TEST(CircuitBreakerRamp, ForcedAndResetBreakersDoNotRamp) {
  FakeClock clock;
  CircuitBreaker b("svc", ramping(), clock);
  trip_and_wait(b, clock);
  b.on_complete(b.try_acquire(), milliseconds(1), false);
  b.reset();
  EXPECT_EQ(admitted(b, 100), 1.0);
  CircuitBreakerConfig bad = ramping();
  bad.half_open_success_probes = 0;
  EXPECT_NE(bad.validate().find("half_open_success_probes"), std::string::npos);
  bad = ramping();
  bad.ramp_start_percent = 0;
  EXPECT_NE(bad.validate().find("ramp_start_percent"), std::string::npos);
}

}  // namespace
}  // namespace sluice::resilience
