#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "middleware/adaptive_concurrency/adaptive_concurrency_middleware.hpp"
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
  prometheus::Counter* rejected = nullptr;
  prometheus::Registry* registry =
      spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  if (registry != nullptr) {
    rejected = &prometheus::BuildCounter()
                    .Name("sluice_adaptive_concurrency_rejected_total")
                    .Help("Requests shed above the measured concurrency limit.")
                    .Register(*registry)
                    .Add({{"route", spec.route}, {"middleware", spec.name}});
  }
  auto m =
      std::make_shared<AdaptiveConcurrencyMiddleware>(spec.name, spec.route, g, clock, rejected);
  if (registry != nullptr) {
    // The controller's figures, read at scrape time; gone with the middleware (weak_ptr).
    std::weak_ptr<AdaptiveConcurrencyMiddleware> weak = m;
    const std::string route = spec.route, name = spec.name;
    auto collectable = std::make_shared<observe::FunctionCollectable>([weak, route, name] {
      std::vector<prometheus::MetricFamily> out;
      auto self = weak.lock();
      if (!self) return out;
      const auto s = self->controller().snapshot();
      auto gauge = [&](const char* family, const char* help, double v) {
        prometheus::MetricFamily f;
        f.name = family;
        f.help = help;
        f.type = prometheus::MetricType::Gauge;
        prometheus::ClientMetric cm;
        cm.label = {{"route", route}, {"middleware", name}};
        cm.gauge.value = v;
        f.metric.push_back(std::move(cm));
        out.push_back(std::move(f));
      };
      gauge("sluice_adaptive_concurrency_limit", "The measured concurrency limit.", s.limit);
      gauge("sluice_adaptive_concurrency_in_flight", "Requests admitted and not yet done.",
            s.in_flight);
      gauge("sluice_adaptive_concurrency_gradient", "min RTT (with buffer) / sample RTT.",
            s.gradient);
      gauge("sluice_adaptive_concurrency_min_rtt_seconds", "The measured minimum RTT.",
            std::chrono::duration<double>(s.min_rtt).count());
      gauge("sluice_adaptive_concurrency_sample_rtt_seconds", "The last interval's sample RTT.",
            std::chrono::duration<double>(s.sample_rtt).count());
      return out;
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
