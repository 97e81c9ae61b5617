// The adaptive concurrency controller against a simulated upstream of known capacity.
#include "resilience/gradient_controller.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

// An upstream that answers in `base` up to `capacity` requests at once and proportionally
// slower beyond (queueing): the shape every overloaded service has.
struct SimulatedUpstream {
  int capacity;
  milliseconds base{10};
  Nanos latency(int concurrent) const {
    return std::chrono::duration_cast<Nanos>(Nanos(base) *
                                             std::max(1.0, double(concurrent) / capacity));
  }
};

// Rounds of 200 eager clients: as many as the limit admits run together and finish together.
// Returns the limit after `seconds` of simulated time.
uint32_t drive(GradientController& c, FakeClock& clock, const SimulatedUpstream& up, double seconds,
               Nanos* last_latency = nullptr) {
  const SteadyTime end =
      clock.now() + std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(seconds));
  while (clock.now() < end) {
    int admitted = 0;
    for (int i = 0; i < 200; ++i)
      admitted += c.try_acquire() ? 1 : 0;
    const Nanos rtt = up.latency(admitted);
    clock.advance(rtt);
    for (int i = 0; i < admitted; ++i)
      c.release(rtt);
    if (last_latency != nullptr) *last_latency = rtt;
  }
  return c.limit();
}

GradientConfig config() {
  GradientConfig g;
  g.min_rtt_interval = milliseconds(600'000);
  g.min_rtt_requests = 20;
  return g;
}

TEST(GradientController, MeasuresTheMinRttAtMinConcurrencyFirst) {
  FakeClock clock;
  GradientController c(config(), clock);
  EXPECT_EQ(c.limit(), 3u);
  EXPECT_TRUE(c.snapshot().measuring_min_rtt);
  drive(c, clock, {.capacity = 20}, 0.2);
  const auto s = c.snapshot();
  EXPECT_FALSE(s.measuring_min_rtt);
  EXPECT_EQ(s.min_rtt, milliseconds(10));
}

// The fixed point of the update is n = 1.25 C + sqrt(1.25 C) (buffer 25 %): about 1.5 x the
// capacity, where latency is 1.5 x the min — bounded, instead of 200 / C = 10 x without a limit.
TEST(GradientController, ConvergesOnTheUpstreamsCapacityAndFollowsItDown) {
  FakeClock clock;
  GradientController c(config(), clock);
  Nanos latency{0};
  const uint32_t at20 = drive(c, clock, {.capacity = 20}, 30, &latency);
  EXPECT_GE(at20, 20u);
  EXPECT_LE(at20, 40u);
  EXPECT_LE(latency, milliseconds(20)) << "latency stays within 2x the min RTT";

  const uint32_t at5 = drive(c, clock, {.capacity = 5}, 30, &latency);
  EXPECT_GE(at5, 5u);
  EXPECT_LE(at5, 12u) << "a slower upstream gets less concurrency";
  EXPECT_LE(latency, milliseconds(25));

  const uint32_t at100 = drive(c, clock, {.capacity = 100}, 30);
  EXPECT_GE(at100, 100u) << "and more when it recovers";
  EXPECT_GT(c.snapshot().rejected, 0u);
}

TEST(GradientController, NeverBelowMinOrAboveMaxAndInvalidConfigsNamed) {
  FakeClock clock;
  GradientConfig g = config();
  g.max_concurrency = 16;
  GradientController c(g, clock);
  EXPECT_LE(drive(c, clock, {.capacity = 1000}, 10), 16u);
  EXPECT_GE(drive(c, clock, {.capacity = 1}, 10), 3u);
  g.min_concurrency = 0;
  EXPECT_NE(g.validate().find("min_concurrency"), std::string::npos);
  g = config();
  g.sample_percentile = 0;
  EXPECT_NE(g.validate().find("sample_percentile"), std::string::npos);
}

}  // namespace
}  // namespace sluice::resilience
