#include "middleware/rate_limit/rate_limit_stats.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "observe/shared_pool.hpp"

namespace sluice::middleware {

RateLimitDecisionStats RateLimitDecisionCounters::series(const std::string& route,
                                                         const std::string& limiter) {
  std::lock_guard lock(mutex_);
  Series& s = series_[{route, limiter}];  // a map's nodes stay where they are
  return {.allowed = &s.allowed,
          .denied = &s.denied,
          .allowed_degraded = &s.allowed_degraded,
          .denied_degraded = &s.denied_degraded};
}

std::vector<prometheus::MetricFamily> RateLimitDecisionCounters::collect() const {
  prometheus::MetricFamily family{"sluice_rate_limit_decisions_total",
                                  "Rate-limit decisions by limiter and result",
                                  prometheus::MetricType::Counter,
                                  {}};
  std::lock_guard lock(mutex_);
  if (series_.empty()) return {};
  for (const auto& [key, s] : series_) {
    const auto& [route, limiter] = key;
    for (const auto& [result, counter] :
         {std::pair{"allowed", &s.allowed}, std::pair{"denied", &s.denied},
          std::pair{"allowed_degraded", &s.allowed_degraded},
          std::pair{"denied_degraded", &s.denied_degraded}}) {
      prometheus::ClientMetric m;
      // The labels in prometheus-cpp's order (sorted by name), as the family had before.
      m.label = {{"limiter", limiter}, {"result", result}, {"route", route}};
      m.counter.value = static_cast<double>(counter->value());
      family.metric.push_back(std::move(m));
    }
  }
  std::vector<prometheus::MetricFamily> out;
  out.push_back(std::move(family));
  return out;
}

RateLimitDecisionStats rate_limit_decision_stats(GatewayServices* services,
                                                 const std::string& route,
                                                 const std::string& limiter) {
  if (services == nullptr || !services->metrics) return {};
  return observe::shared_pool<RateLimitDecisionCounters>(*services).series(route, limiter);
}

RateLimitBackendStats rate_limit_backend_stats(prometheus::Registry* registry,
                                               const std::string& route,
                                               const std::string& limiter) {
  RateLimitBackendStats b;
  if (registry == nullptr) return b;
  b.up = &prometheus::BuildGauge()
              .Name("sluice_rate_limit_backend_up")
              .Help("1 while the rate limiter's Redis backend answers, 0 while degraded")
              .Register(*registry)
              .Add({{"route", route}, {"limiter", limiter}});
  auto& errors = prometheus::BuildCounter()
                     .Name("sluice_rate_limit_backend_errors_total")
                     .Help("Failed Redis calls of the rate limiter, by kind")
                     .Register(*registry);
  b.errors_timeout = &errors.Add({{"route", route}, {"limiter", limiter}, {"kind", "timeout"}});
  b.errors_connection =
      &errors.Add({{"route", route}, {"limiter", limiter}, {"kind", "connection"}});
  b.errors_script = &errors.Add({{"route", route}, {"limiter", limiter}, {"kind", "script"}});
  b.redis_rtt =
      &prometheus::BuildHistogram()
           .Name("sluice_rate_limit_redis_rtt_seconds")
           .Help("Round-trip time of the rate limiter's Redis calls")
           .Register(*registry)
           .Add({{"route", route}, {"limiter", limiter}},
                prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25});
  return b;
}

}  // namespace sluice::middleware
