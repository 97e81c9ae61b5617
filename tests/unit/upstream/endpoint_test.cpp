// Outlier ejection of one endpoint, with a fake clock: consecutive failures eject it for a
// period that doubles with each ejection.
#include <gtest/gtest.h>

#include "sluice/clock.hpp"
#include "upstream/endpoint.hpp"

namespace sluice::upstream {
namespace {

using namespace std::chrono_literals;

TEST(EndpointHealth, EjectsAfterConsecutiveFailuresWithGrowingBackoff) {
  FakeClock clock;
  OutlierPolicy policy;
  policy.consecutive_failures = 3;
  policy.base_ejection = 10s;
  policy.max_ejection = 100s;
  EndpointHealth h;
  EXPECT_FALSE(h.record_failure(clock.now(), policy));
  EXPECT_FALSE(h.record_failure(clock.now(), policy));
  h.record_success();  // the streak starts over
  EXPECT_FALSE(h.record_failure(clock.now(), policy));
  EXPECT_FALSE(h.record_failure(clock.now(), policy));
  EXPECT_TRUE(h.record_failure(clock.now(), policy));
  EXPECT_TRUE(h.ejected(clock.now()));
  clock.advance(10s);
  EXPECT_FALSE(h.ejected(clock.now())) << "first ejection: base period";
  for (int i = 0; i < 2; ++i)
    h.record_failure(clock.now(), policy);
  EXPECT_TRUE(h.record_failure(clock.now(), policy));
  clock.advance(19s);
  EXPECT_TRUE(h.ejected(clock.now())) << "second ejection: twice as long";
  clock.advance(1s);
  EXPECT_FALSE(h.ejected(clock.now()));
}

}  // namespace
}  // namespace sluice::upstream
