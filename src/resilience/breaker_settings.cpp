#include "resilience/breaker_settings.hpp"

namespace sluice::resilience {
namespace {

// CircuitBreakerConfig::validate() names its fields without the config's "_ms" suffixes.
void report(const Settings& s, const std::string& message) {
  const auto colon = message.find(':');
  std::string field = message.substr(0, colon);
  std::string text = colon == std::string::npos ? message : message.substr(colon + 2);
  for (const char* timed : {"retry_timeout", "stat_interval", "max_allowed_rt", "ramp"})
    if (field == timed) field += "_ms";
  s.error(field, text);
}

}  // namespace

std::optional<resilience::CircuitBreakerConfig> read_breaker_settings(const Settings& s) {
  resilience::CircuitBreakerConfig b;
  const auto strategy =
      s.choice("strategy", {"slow_request_ratio", "error_ratio", "error_count"}, "error_ratio");
  b.strategy = strategy == "slow_request_ratio" ? Strategy::kSlowRequestRatio
               : strategy == "error_count"      ? Strategy::kErrorCount
                                                : Strategy::kErrorRatio;
  if (!s.has("threshold")) s.error("threshold", "is required");
  b.threshold = s.number("threshold", b.strategy == Strategy::kErrorCount ? 5 : 0.5);
  b.retry_timeout = s.millis("retry_timeout_ms", b.retry_timeout);
  b.min_request_amount =
      static_cast<uint32_t>(s.integer("min_request_amount", b.min_request_amount, 0, 1 << 30));
  b.stat_interval = s.millis("stat_interval_ms", b.stat_interval);
  b.stat_sliding_window_bucket_count = static_cast<uint32_t>(
      s.integer("stat_sliding_window_bucket_count", b.stat_sliding_window_bucket_count, 1, 10000));
  b.max_allowed_rt = s.millis("max_allowed_rt_ms", b.max_allowed_rt);
  b.half_open_max_probes =
      static_cast<uint32_t>(s.integer("half_open_max_probes", b.half_open_max_probes, 1, 1 << 20));
  b.half_open_success_probes = static_cast<uint32_t>(
      s.integer("half_open_success_probes", b.half_open_success_probes, 1, 1 << 20));
  b.ramp = s.millis("ramp_ms", b.ramp);
  b.ramp_start_percent = s.number("ramp_start_percent", b.ramp_start_percent, 0.1, 100);
  b.ramp_min_request_amount = static_cast<uint32_t>(
      s.integer("ramp_min_request_amount", b.ramp_min_request_amount, 1, 1 << 30));
  // Keys that the other settings make ineffective are errors, not silently accepted.
  if (b.strategy != Strategy::kSlowRequestRatio && s.has("max_allowed_rt_ms"))
    s.error("max_allowed_rt_ms", "only for strategy: slow_request_ratio");
  if (b.ramp.count() == 0) {
    for (const char* k : {"ramp_start_percent", "ramp_min_request_amount"})
      if (s.has(k)) s.error(k, "has no effect without ramp_ms");
  }
  if (auto err = b.validate(); !err.empty()) {
    report(s, err);
    return std::nullopt;
  }
  return b;
}

}  // namespace sluice::resilience
