// Retry-After (RFC 9110 §10.2.3) as a delay: either delay-seconds ("120") or an HTTP-date, in
// the preferred IMF-fixdate form or the two obsolete ones a recipient must also accept
// (§5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
// "Sun Nov  6 08:49:37 1994". A date in the past is no delay.
//
//   auto d = retry_after_delay("Wed, 21 Oct 2015 07:28:00 GMT", std::chrono::system_clock::now());
//   if (d) wait_at_least(*d);   // nullopt: not a Retry-After value
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace sluice::queue {

std::optional<std::chrono::milliseconds> retry_after_delay(
    std::string_view value, std::chrono::system_clock::time_point now);

}  // namespace sluice::queue
