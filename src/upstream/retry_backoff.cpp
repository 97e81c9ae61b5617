#include "upstream/retry_backoff.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string>

#include "core/http_text.hpp"

namespace sluice::upstream {

std::chrono::milliseconds RetryBackoff::delay(int retry, double unit) const {
  if (base.count() <= 0 || retry < 1) return std::chrono::milliseconds{0};
  // base * 2^(retry-1), without overflow for large retry counts.
  long long bound = base.count();
  for (int i = 1; i < retry && bound < max.count(); ++i)
    bound *= 2;
  bound = std::min<long long>(bound, std::max(max.count(), base.count()));
  const double half = static_cast<double>(bound) / 2.0;
  return std::chrono::milliseconds{
      static_cast<long long>(half + half * std::clamp(unit, 0.0, 1.0))};
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  value = detail::trim_ows(value);
  if (value.empty()) return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    long long seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size()) return std::nullopt;
    return std::chrono::milliseconds{std::min(seconds, 1'000'000'000LL) * 1000};
  }
  // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (the obsolete forms are not accepted).
  std::tm tm{};
  const std::string text(value);
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
  if (at <= now) return std::chrono::milliseconds{0};
  return std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
}

}  // namespace sluice::upstream
