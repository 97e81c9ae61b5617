// Retry-After read as the replayer reads it (RFC 9110 §10.2.3): delay-seconds and the three
// HTTP-date forms (§5.6.7), against a fixed "now"; anything else is not a Retry-After.
#include "queue/retry_after.hpp"

#include <gtest/gtest.h>

namespace sluice::queue {
namespace {

using std::chrono::milliseconds;

// 1994-11-06T08:49:30Z: seven seconds before the RFC's example date.
const auto kNow = std::chrono::system_clock::from_time_t(784111770);

TEST(RetryAfter, DelaySecondsAreRead) {
  EXPECT_EQ(retry_after_delay("120", kNow), milliseconds(120'000));
  EXPECT_EQ(retry_after_delay(" 0 ", kNow), milliseconds(0));
  EXPECT_EQ(retry_after_delay("99999999999999999999999", kNow), milliseconds(1'000'000'000'000))
      << "absurd values are capped, not overflowed";
}

TEST(RetryAfter, TheThreeHttpDateFormsAreRead) {
  EXPECT_EQ(retry_after_delay("Sun, 06 Nov 1994 08:49:37 GMT", kNow), milliseconds(7000));
  EXPECT_EQ(retry_after_delay("Sunday, 06-Nov-94 08:49:37 GMT", kNow), milliseconds(7000));
  EXPECT_EQ(retry_after_delay("Sun Nov  6 08:49:37 1994", kNow), milliseconds(7000));
}

TEST(RetryAfter, ADateInThePastIsNoDelay) {
  EXPECT_EQ(retry_after_delay("Sat, 05 Nov 1994 08:49:37 GMT", kNow), milliseconds(0));
}

TEST(RetryAfter, AnythingElseIsNotARetryAfter) {
  for (const char* bad :
       {"", "soon", "-5", "1.5", "12s", "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT trailing", "Sun, 32 Nov 1994 08:49:37 GMT"})
    EXPECT_EQ(retry_after_delay(bad, kNow), std::nullopt) << bad;
}

}  // namespace
}  // namespace sluice::queue
