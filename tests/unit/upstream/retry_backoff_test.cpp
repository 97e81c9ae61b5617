// Backoff between proxy retries and Retry-After parsing.
#include "upstream/retry_backoff.hpp"

#include <gtest/gtest.h>

namespace sluice::upstream {
namespace {

using std::chrono::milliseconds;

TEST(RetryBackoff, DoublesPerRetryWithinTheUpperHalfAndStopsAtTheCap) {
  const RetryBackoff b{.base = milliseconds(100), .max = milliseconds(350)};
  EXPECT_EQ(b.delay(1, 0.0), milliseconds(50));
  EXPECT_EQ(b.delay(1, 0.999), milliseconds(99));
  EXPECT_EQ(b.delay(2, 0.0), milliseconds(100));
  EXPECT_EQ(b.delay(2, 0.5), milliseconds(150));
  EXPECT_EQ(b.delay(3, 0.0), milliseconds(175)) << "400 capped at 350";
  EXPECT_EQ(b.delay(30, 0.999), milliseconds(349)) << "no overflow for many retries";
  EXPECT_EQ((RetryBackoff{.base = milliseconds(0)}.delay(3, 0.7)), milliseconds(0))
      << "base 0: retry at once";
}

TEST(RetryBackoff, RetryAfterInSecondsOrAsADate) {
  const auto now = std::chrono::system_clock::from_time_t(784111777);  // 06 Nov 1994 08:49:37
  EXPECT_EQ(parse_retry_after("2", now), milliseconds(2000));
  EXPECT_EQ(parse_retry_after(" 0 ", now), milliseconds(0));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now), milliseconds(3000));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), milliseconds(0))
      << "a date in the past: no wait";
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), std::nullopt);
}

}  // namespace
}  // namespace sluice::upstream
