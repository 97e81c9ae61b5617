// MetricsRegistry: prometheus-cpp's Registry plus collectables read at scrape time — sharded
// request metrics, process_* from /proc, exporter and access-log counters — which a plain
// Registry cannot hold (it only stores its own Family<T>s). GET /metrics serializes Collect().
//
//   auto registry = std::make_shared<MetricsRegistry>();   // GatewayServices::metrics
//   registry->add_collectable(std::make_shared<ProcessCollector>());
//   TextSerializer().Serialize(registry->Collect());        // families, then collectables
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/registry.h>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace sluice::observe {

class MetricsRegistry final : public prometheus::Registry {
 public:
  // Held weakly: a collectable that is gone is skipped (and forgotten) at the next scrape.
  void add_collectable(std::weak_ptr<const prometheus::Collectable> collectable);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;
  mutable std::vector<std::weak_ptr<const prometheus::Collectable>> collectables_;
};

// Adds `collectable` when `registry` is a MetricsRegistry (the gateway's is); false otherwise.
bool add_collectable(prometheus::Registry& registry,
                     std::weak_ptr<const prometheus::Collectable> collectable);

// A collectable from a function, e.g. counters read from an exporter at scrape time.
class FunctionCollectable final : public prometheus::Collectable {
 public:
  using Fn = std::function<std::vector<prometheus::MetricFamily>()>;
  explicit FunctionCollectable(Fn fn) : fn_(std::move(fn)) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return fn_(); }

 private:
  Fn fn_;
};

// One-sample families for FunctionCollectable.
prometheus::MetricFamily counter_family(std::string name, std::string help, double value);
prometheus::MetricFamily gauge_family(std::string name, std::string help, double value);

}  // namespace sluice::observe
