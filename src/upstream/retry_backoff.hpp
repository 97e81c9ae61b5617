// Backoff between the tries of a proxied request: exponential with jitter, as Envoy's
// retry_back_off, and the upstream's `Retry-After` honoured.
//
//   RetryBackoff b{.base = 25ms, .max = 250ms};
//   auto wait = b.delay(1, draw);  // in [12.5 ms, 25 ms]; the 2nd retry in [25, 50], ... capped
//   auto after = parse_retry_after("2", now);  // 2 s; an HTTP-date works too
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace sluice::upstream {

struct RetryBackoff {
  std::chrono::milliseconds base{25};  // 0: retry at once
  std::chrono::milliseconds max{250};  // the cap of one wait (Envoy's default: 10 x base)

  // The wait before retry number `retry` (1 for the first), drawn uniformly in [b/2, b] with
  // b = min(base * 2^(retry-1), max). Half the span is jitter, so synchronized clients spread
  // out, and the lower half bounds how soon an overloaded upstream sees the retry. `unit` is a
  // uniform draw in [0, 1) (seeded in tests).
  std::chrono::milliseconds delay(int retry, double unit) const;
};

// The wait a `Retry-After` value asks for (RFC 9110 §10.2.3): delta-seconds or an HTTP-date
// relative to `now`. nullopt when absent or malformed; zero for a date in the past.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

}  // namespace sluice::upstream
