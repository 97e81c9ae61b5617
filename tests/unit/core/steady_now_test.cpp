// detail::wall_at: the wall-clock time of a steady reading, from an offset the thread re-reads
// once a second; it must agree with a CLOCK_REALTIME read of the same moment and keep the steady
// clock's differences exactly.
#include <gtest/gtest.h>

#include "core/steady_now.hpp"

namespace sluice::detail {
namespace {

using namespace std::chrono_literals;

TEST(WallAt, AgreesWithAWallClockReadOfTheSameMoment) {
  for (int i = 0; i < 3; ++i) {
    const auto before = wall_now();
    const auto at = wall_at(steady_now());
    const auto after = wall_now();
    // The offset's two reads are a few ns apart; allow 1 ms for a descheduled thread.
    EXPECT_GE(at, before - 1ms);
    EXPECT_LE(at, after + 1ms);
  }
}

TEST(WallAt, KeepsTheSteadyClocksDifferences) {
  const auto t = steady_now();
  const auto w = wall_at(t);
  EXPECT_EQ(wall_at(t + 250ms) - w, 250ms);    // within the second: the same offset
  const auto later = wall_at(t + 2500ms) - w;  // re-reads the offset: its reads' ns apart
  EXPECT_GE(later, 2500ms - 1ms);
  EXPECT_LE(later, 2500ms + 1ms);
}

}  // namespace
}  // namespace sluice::detail
