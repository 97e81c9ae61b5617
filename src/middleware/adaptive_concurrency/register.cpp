#include "middleware/adaptive_concurrency/adaptive_concurrency_middleware.hpp"
#include "middleware/adaptive_concurrency/adaptive_concurrency_stats.hpp"
#include "observe/metrics/metrics_registry.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

// GradientConfig::validate() names its fields without the config's "_ms" suffixes.
void report(const Settings& s, const std::string& message) {
  const auto colon = message.find(':');
  std::string field = message.substr(0, colon);
  if (field == "update_interval" || field == "min_rtt_interval") field += "_ms";
  s.error(field, colon == std::string::npos ? message : message.substr(colon + 2));
}

std::shared_ptr<Middleware> build(const MiddlewareSpec& spec, Settings& s) {
  resilience::GradientConfig g;
  g.update_interval = s.millis("update_interval_ms", g.update_interval);
  g.sample_percentile = s.number("sample_percentile", g.sample_percentile, 0, 1);
  g.min_rtt_interval = s.millis("min_rtt_interval_ms", g.min_rtt_interval);
  g.min_rtt_requests =
      static_cast<uint32_t>(s.integer("min_rtt_requests", g.min_rtt_requests, 1, 1'000'000));
  g.min_concurrency =
      static_cast<uint32_t>(s.integer("min_concurrency", g.min_concurrency, 1, 1'000'000));
  g.max_concurrency =
      static_cast<uint32_t>(s.integer("max_concurrency", g.max_concurrency, 1, 1'000'000));
  g.buffer = s.number("buffer", g.buffer, 0, 10);
  if (auto err = g.validate(); !err.empty()) {
    report(s, err);
    return nullptr;
  }
  const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
  prometheus::Registry* registry =
      spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  prometheus::Counter* rejected = adaptive_concurrency_rejected(registry, spec.route, spec.name);
  auto m =
      std::make_shared<AdaptiveConcurrencyMiddleware>(spec.name, spec.route, g, clock, rejected);
  if (registry != nullptr) {
    // The controller's figures, read at scrape time; gone with the middleware (weak_ptr).
    std::weak_ptr<AdaptiveConcurrencyMiddleware> weak = m;
    const std::string route = spec.route, name = spec.name;
    auto collectable = std::make_shared<observe::FunctionCollectable>([weak, route, name] {
      auto self = weak.lock();
      if (!self) return std::vector<prometheus::MetricFamily>{};
      return adaptive_concurrency_gauges(self->controller().snapshot(), route, name);
    });
    observe::add_collectable(*registry, collectable);
    // The middleware holds its collectable: the registry keeps only a weak reference.
    m->hold(std::move(collectable));
  }
  return m;
}

const MiddlewareRegistrar registrar("adaptive_concurrency", build);

}  // namespace
}  // namespace sluice::middleware
