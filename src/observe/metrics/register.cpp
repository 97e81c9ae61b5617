// The `metrics:` config section. Metrics are on unless `enabled: false`, so /metrics is useful
// without any config; process_* metrics are always served.
//
//   metrics:
//     enabled: true
//     duration_buckets_seconds: [0.0001, 0.001, 0.01, 0.1, 1, 10]
//     size_buckets_bytes: [256, 4096, 65536, 1048576]
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>

#include "observe/metrics/metrics_observer.hpp"
#include "observe/metrics/metrics_registry.hpp"
#include "observe/metrics/metrics_section.hpp"
#include "observe/metrics/process_collector.hpp"
#include "sluice/extension/config_section.hpp"

namespace sluice::observe {
namespace {

std::vector<double> read_bounds(const Settings& s, std::string_view key,
                                std::vector<double> fallback) {
  if (!s.has(key)) return fallback;
  std::vector<double> out;
  for (const auto& text : s.strings(key)) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v > 0) || v == INFINITY) {
      s.error(key, "must be a list of positive numbers, got \"" + text + "\"");
      return fallback;
    }
    if (!out.empty() && v <= out.back()) {
      s.error(key, "bucket bounds must be strictly ascending");
      return fallback;
    }
    out.push_back(v);
  }
  if (out.empty()) s.error(key, "needs at least one bucket bound");
  return out.empty() ? fallback : out;
}

// Registered once per process: every reload shares the same series.
struct MetricsState {
  explicit MetricsState(GatewayServices& services, MetricsOptions options)
      : http(std::make_shared<HttpMetrics>(std::move(options))),
        http_collectable(
            std::make_shared<FunctionCollectable>([h = http] { return h->collect(); })),
        process(std::make_shared<ProcessCollector>()) {
    if (services.metrics) {
      add_collectable(*services.metrics, http_collectable);
      add_collectable(*services.metrics, process);
    }
  }
  std::shared_ptr<HttpMetrics> http;
  std::shared_ptr<FunctionCollectable> http_collectable;
  std::shared_ptr<ProcessCollector> process;
};

const extension::ConfigSectionRegistrar section("metrics", [](Settings& s, ConfigBuild& config,
                                                              GatewayServices& services) {
  const bool enabled = s.boolean("enabled", true);
  MetricsOptions options;
  options.duration_buckets = read_bounds(s, "duration_buckets_seconds", options.duration_buckets);
  options.size_buckets = read_bounds(s, "size_buckets_bytes", options.size_buckets);
  if (!s.ok()) return;
  auto& state = services.shared.get_or_emplace<MetricsState>(services, options);
  if (!(state.http->options() == options)) {
    spdlog::warn("metrics: changed histogram buckets take effect after a restart");
  }
  if (!enabled) return;
  config.extras->emplace<MetricsHandle>(MetricsHandle{state.http});
  config.observers.push_back(std::make_shared<MetricsObserver>(*state.http));
});

}  // namespace
}  // namespace sluice::observe
