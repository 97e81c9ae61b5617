// ExporterPool: the process's OTLP exporters across reloads. A reload with unchanged exporter
// settings gets the same exporter (no lost queue, no new thread); a changed one gets a new
// exporter and the old one is retired when the last config using it is released, then shut
// down (flushing its queue) on the control-plane thread at the next config load or at exit —
// never on a worker. Its counters stay in the sluice_otlp_* totals, so they never go backwards.
//
//   auto& pool = ExporterPool::of(services);
//   auto exporter = pool.get(options.exporter, options.exporter_key());
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "observe/retiring_pool.hpp"
#include "observe/tracing/otlp_exporter.hpp"
#include "sluice/services.hpp"

namespace prometheus {
struct MetricFamily;
}

namespace sluice::observe {

struct ExporterTotals {
  double exported = 0, dropped = 0, failed = 0, retries = 0, queued = 0;
  void add(const OtlpExporter& e, bool with_queue);
};

class ExporterPool : public RetiringPool<OtlpExporter, ExporterTotals> {
 public:
  // The pool in services.shared (created, and its metrics registered, on first use).
  static ExporterPool& of(GatewayServices& services);

  std::shared_ptr<OtlpExporter> get(const OtlpConfig& config, const std::string& key);
  std::vector<prometheus::MetricFamily> collect() const;
};

}  // namespace sluice::observe
