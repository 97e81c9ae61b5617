#include "middleware/adaptive_concurrency/adaptive_concurrency_stats.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <chrono>

namespace sluice::middleware {

prometheus::Counter* adaptive_concurrency_rejected(prometheus::Registry* registry,
                                                   const std::string& route,
                                                   const std::string& middleware) {
  if (registry == nullptr) return nullptr;
  return &prometheus::BuildCounter()
              .Name("sluice_adaptive_concurrency_rejected_total")
              .Help("Requests shed above the measured concurrency limit.")
              .Register(*registry)
              .Add({{"route", route}, {"middleware", middleware}});
}

std::vector<prometheus::MetricFamily> adaptive_concurrency_gauges(
    const resilience::GradientSnapshot& s, const std::string& route,
    const std::string& middleware) {
  std::vector<prometheus::MetricFamily> out;
  auto gauge = [&](const char* family, const char* help, double v) {
    prometheus::MetricFamily f;
    f.name = family;
    f.help = help;
    f.type = prometheus::MetricType::Gauge;
    prometheus::ClientMetric cm;
    cm.label = {{"route", route}, {"middleware", middleware}};
    cm.gauge.value = v;
    f.metric.push_back(std::move(cm));
    out.push_back(std::move(f));
  };
  gauge("sluice_adaptive_concurrency_limit", "The measured concurrency limit.", s.limit);
  gauge("sluice_adaptive_concurrency_in_flight", "Requests admitted and not yet done.",
        s.in_flight);
  gauge("sluice_adaptive_concurrency_gradient", "min RTT (with buffer) / sample RTT.", s.gradient);
  gauge("sluice_adaptive_concurrency_min_rtt_seconds", "The measured minimum RTT.",
        std::chrono::duration<double>(s.min_rtt).count());
  gauge("sluice_adaptive_concurrency_sample_rtt_seconds", "The last interval's sample RTT.",
        std::chrono::duration<double>(s.sample_rtt).count());
  return out;
}

}  // namespace sluice::middleware
