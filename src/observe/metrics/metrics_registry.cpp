#include "observe/metrics/metrics_registry.hpp"

#include <prometheus/metric_family.h>

namespace sluice::observe {

void MetricsRegistry::add_collectable(std::weak_ptr<const prometheus::Collectable> collectable) {
  std::lock_guard lock(mutex_);
  collectables_.push_back(std::move(collectable));
}

std::vector<prometheus::MetricFamily> MetricsRegistry::Collect() const {
  auto out = prometheus::Registry::Collect();
  std::vector<std::shared_ptr<const prometheus::Collectable>> live;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(collectables_, [&](const auto& weak) {
      auto c = weak.lock();
      if (c == nullptr) return true;
      live.push_back(std::move(c));
      return false;
    });
  }
  // Collected outside the lock: a collectable may take its own locks.
  for (const auto& c : live) {
    auto families = c->Collect();
    for (auto& f : families)
      out.push_back(std::move(f));
  }
  return out;
}

bool add_collectable(prometheus::Registry& registry,
                     std::weak_ptr<const prometheus::Collectable> collectable) {
  auto* r = dynamic_cast<MetricsRegistry*>(&registry);
  if (r == nullptr) return false;
  r->add_collectable(std::move(collectable));
  return true;
}

prometheus::MetricFamily counter_family(std::string name, std::string help, double value) {
  prometheus::MetricFamily f{std::move(name), std::move(help), prometheus::MetricType::Counter, {}};
  prometheus::ClientMetric m;
  m.counter.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

prometheus::MetricFamily gauge_family(std::string name, std::string help, double value) {
  prometheus::MetricFamily f{std::move(name), std::move(help), prometheus::MetricType::Gauge, {}};
  prometheus::ClientMetric m;
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace sluice::observe
