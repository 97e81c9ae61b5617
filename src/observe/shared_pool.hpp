// Process-wide pools of background-thread objects (access-log writers, OTLP exporters, the
// sampling stats): one per process, kept in GatewayServices::shared across reloads, its
// collect() registered with the metrics registry once. (Their threads' warnings:
// observe/rate_limited_warning.hpp.)
//
//   WriterPool& pool = shared_pool<WriterPool>(services);  // one per process, survives reloads
#pragma once

#include <memory>
#include <vector>

#include "observe/metrics/metrics_registry.hpp"
#include "sluice/services.hpp"

namespace sluice::observe {

template <class Pool>
struct SharedPoolHolder {
  std::shared_ptr<Pool> pool = std::make_shared<Pool>();
  std::shared_ptr<FunctionCollectable> metrics;
};

// The Pool kept in GatewayServices::shared; its collect() is registered with the metrics
// registry once, through a weak pointer (the registry may outlive the pool).
template <class Pool>
Pool& shared_pool(GatewayServices& services) {
  auto* holder = services.shared.get<SharedPoolHolder<Pool>>();
  if (holder == nullptr) {
    holder = &services.shared.emplace<SharedPoolHolder<Pool>>();
    std::weak_ptr<Pool> weak = holder->pool;
    holder->metrics = std::make_shared<FunctionCollectable>([weak] {
      auto pool = weak.lock();
      return pool ? pool->collect() : std::vector<prometheus::MetricFamily>{};
    });
    if (services.metrics) add_collectable(*services.metrics, holder->metrics);
  }
  return *holder->pool;
}

}  // namespace sluice::observe
