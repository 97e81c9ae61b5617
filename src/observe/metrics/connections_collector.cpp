#include "observe/metrics/connections_collector.hpp"

#include <prometheus/metric_family.h>

namespace sluice::observe {

std::vector<prometheus::MetricFamily> ConnectionsCollector::Collect() const {
  const auto listeners = source_();
  if (listeners.empty()) return {};
  auto family = [](std::string name, std::string help, prometheus::MetricType type) {
    prometheus::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
  };
  auto open = family("http_connections", "Client connections open now, per listener.",
                     prometheus::MetricType::Gauge);
  auto accepted =
      family("http_connections_accepted_total", "Client connections accepted, per listener.",
             prometheus::MetricType::Counter);
  auto closed = family("http_connections_closed_total", "Client connections closed, per listener.",
                       prometheus::MetricType::Counter);
  auto refused =
      family("http_connections_refused_total",
             "Connections closed at once because limits.max_connections was reached, per listener.",
             prometheus::MetricType::Counter);
  // Per worker: where SO_REUSEPORT (or worker_cpu_affinity's steering) put the connections.
  auto by_worker = family("sluice_worker_connections_accepted_total",
                          "Client connections accepted, per listener and worker.",
                          prometheus::MetricType::Counter);
  for (const auto& l : listeners) {
    auto add = [&l](prometheus::MetricFamily& f, std::uint64_t v) {
      prometheus::ClientMetric m;
      m.label = {{"listener", l.listener}, {"address", l.address}};
      if (f.type == prometheus::MetricType::Gauge)
        m.gauge.value = static_cast<double>(v);
      else
        m.counter.value = static_cast<double>(v);
      f.metric.push_back(std::move(m));
    };
    add(open, l.open);
    add(accepted, l.accepted);
    add(closed, l.closed);
    add(refused, l.refused);
    for (std::size_t w = 0; w < l.accepted_by_worker.size(); ++w) {
      prometheus::ClientMetric m;
      m.label = {{"listener", l.listener}, {"address", l.address}, {"worker", std::to_string(w)}};
      m.counter.value = static_cast<double>(l.accepted_by_worker[w]);
      by_worker.metric.push_back(std::move(m));
    }
  }
  return {std::move(open), std::move(accepted), std::move(closed), std::move(refused),
          std::move(by_worker)};
}

}  // namespace sluice::observe
