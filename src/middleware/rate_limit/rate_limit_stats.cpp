#include "middleware/rate_limit/rate_limit_stats.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace sluice::middleware {

RateLimitDecisionStats rate_limit_decision_stats(prometheus::Registry* registry,
                                                 const std::string& route,
                                                 const std::string& limiter) {
  RateLimitDecisionStats d;
  if (registry == nullptr) return d;
  auto& family = prometheus::BuildCounter()
                     .Name("sluice_rate_limit_decisions_total")
                     .Help("Rate-limit decisions by limiter and result")
                     .Register(*registry);
  d.allowed = &family.Add({{"route", route}, {"limiter", limiter}, {"result", "allowed"}});
  d.denied = &family.Add({{"route", route}, {"limiter", limiter}, {"result", "denied"}});
  d.allowed_degraded =
      &family.Add({{"route", route}, {"limiter", limiter}, {"result", "allowed_degraded"}});
  d.denied_degraded =
      &family.Add({{"route", route}, {"limiter", limiter}, {"result", "denied_degraded"}});
  return d;
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
