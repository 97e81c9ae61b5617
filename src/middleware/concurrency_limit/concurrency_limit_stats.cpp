#include "middleware/concurrency_limit/concurrency_limit_stats.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace sluice::middleware {

ConcurrencyLimitStats concurrency_limit_stats(prometheus::Registry* registry,
                                              const std::string& route,
                                              const std::string& limiter) {
  ConcurrencyLimitStats m;
  if (registry == nullptr) return m;
  m.in_flight = &prometheus::BuildGauge()
                     .Name("sluice_concurrency_limit_in_flight")
                     .Help("Requests holding a slot of a concurrency limit")
                     .Register(*registry)
                     .Add({{"route", route}, {"limiter", limiter}});
  auto& rejected = prometheus::BuildCounter()
                       .Name("sluice_concurrency_limit_rejected_total")
                       .Help("Requests refused by a concurrency limit, by reason")
                       .Register(*registry);
  m.rejected_full = &rejected.Add({{"route", route}, {"limiter", limiter}, {"reason", "full"}});
  m.rejected_queue_full =
      &rejected.Add({{"route", route}, {"limiter", limiter}, {"reason", "queue_full"}});
  m.rejected_timeout =
      &rejected.Add({{"route", route}, {"limiter", limiter}, {"reason", "timeout"}});
  return m;
}

}  // namespace sluice::middleware
