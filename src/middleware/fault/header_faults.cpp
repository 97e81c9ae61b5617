#include "middleware/fault/header_faults.hpp"

#include <algorithm>
#include <charconv>

namespace sluice::middleware {

namespace {
constexpr std::string_view kDelayMs = "x-sluice-fault-delay-ms";
constexpr std::string_view kDelayPct = "x-sluice-fault-delay-percentage";
constexpr std::string_view kAbortStatus = "x-sluice-fault-abort-status";
constexpr std::string_view kAbortPct = "x-sluice-fault-abort-percentage";
constexpr std::string_view kThroughput = "x-sluice-fault-throughput-bps";

template <class T>
std::optional<T> parse(std::string_view text) {
  T value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

double percentage_of(const Request& request, std::string_view header) {
  auto p = parse<double>(request.header(header));
  return p ? std::clamp(*p, 0.0, 100.0) : 100.0;
}
}  // namespace

HeaderFaultRequest read_header_faults(const HeaderFaultConfig& config, Request& request,
                                      std::string_view client_ip) {
  HeaderFaultRequest out;
  // The cheap check first: most requests carry none of the headers.
  const bool present = request.has_header(kDelayMs) || request.has_header(kAbortStatus) ||
                       request.has_header(kThroughput);
  if (!present) return out;
  const bool allowed = config.allowed_clients.empty() || config.allowed_clients.contains(client_ip);
  if (allowed) {
    if (auto ms = parse<std::int64_t>(request.header(kDelayMs)); ms && *ms >= 0) {
      out.delay = std::min(std::chrono::milliseconds(*ms), config.max_delay);
      out.delay_percentage = percentage_of(request, kDelayPct);
    }
    if (auto s = parse<int>(request.header(kAbortStatus)); s && *s >= 200 && *s <= 599) {
      out.abort_status = *s;
      out.abort_percentage = percentage_of(request, kAbortPct);
    }
    if (auto bps = parse<std::uint64_t>(request.header(kThroughput)); bps && *bps > 0) {
      out.throughput = *bps;
    }
  }
  for (auto h : {kDelayMs, kDelayPct, kAbortStatus, kAbortPct, kThroughput})
    request.remove_header(h);
  return out;
}

}  // namespace sluice::middleware
