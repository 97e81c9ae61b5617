// Process-wide pools of background-thread objects (access-log writers, OTLP exporters), and the
// rate-limited warning their threads log with.
//
//   WriterPool& pool = shared_pool<WriterPool>(services);  // one per process, survives reloads
//   static RateLimitedWarning warn("tracing");            // warn(message): at most one per 10 s
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
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

// A failing sink (an unreachable collector, a full disk) fails every batch: one warning per
// 10 s is enough. Safe from any thread.
class RateLimitedWarning {
 public:
  explicit RateLimitedWarning(const char* prefix) : prefix_(prefix) {}
  void operator()(const std::string& message) {
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    int64_t due = next_ns_.load(std::memory_order_relaxed);
    if (now < due || !next_ns_.compare_exchange_strong(due, now + 10'000'000'000)) return;
    spdlog::warn("{}: {}", prefix_, message);
  }

 private:
  const char* prefix_;
  std::atomic<int64_t> next_ns_{0};
};

}  // namespace sluice::observe
