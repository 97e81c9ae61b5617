// MetricsHandle: how code outside the `metrics:` section (GET /stats/middlewares, tests) finds
// the process-wide HttpMetrics of a loaded config: config.extras->get<MetricsHandle>().
#pragma once

#include <memory>

#include "observe/metrics/http_metrics.hpp"

namespace sluice::observe {

struct MetricsHandle {
  std::shared_ptr<HttpMetrics> http;
};

}  // namespace sluice::observe
