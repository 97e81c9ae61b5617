#include "queue/retry_after.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string>

namespace sluice::queue {

std::optional<std::chrono::milliseconds> retry_after_delay(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {  // delay-seconds = 1*DIGIT
    long long seconds = 0;
    const auto* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, seconds);
    if (ptr != end) return std::nullopt;
    if (ec == std::errc::result_out_of_range)
      seconds = 1'000'000'000LL;  // "far": capped below
    else if (ec != std::errc())
      return std::nullopt;
    return std::chrono::milliseconds(std::min(seconds, 1'000'000'000LL) * 1000);
  }
  // strptime in the C locale's names (sluice never calls setlocale) and timegm: the date is GMT.
  const std::string text(value);
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* rest = ::strptime(text.c_str(), format, &tm);
    if (rest == nullptr || *rest != '\0') continue;
    const std::time_t at = ::timegm(&tm);
    if (at == static_cast<std::time_t>(-1)) return std::nullopt;
    const auto delay = std::chrono::system_clock::from_time_t(at) - now;
    if (delay <= std::chrono::system_clock::duration::zero()) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(delay);
  }
  return std::nullopt;
}

}  // namespace sluice::queue
