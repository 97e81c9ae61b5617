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
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gateway/services.hpp"
#include "observe/otlp_exporter.hpp"

namespace prometheus {
struct MetricFamily;
}

namespace sluice::observe {

class ExporterPool : public std::enable_shared_from_this<ExporterPool> {
 public:
  // The pool in services.shared (created, and its metrics registered, on first use).
  static ExporterPool& of(GatewayServices& services);

  ExporterPool() = default;
  ~ExporterPool();
  ExporterPool(const ExporterPool&) = delete;
  ExporterPool& operator=(const ExporterPool&) = delete;

  std::shared_ptr<OtlpExporter> get(const OtlpConfig& config, const std::string& key);
  // Shuts down and frees retired exporters. Blocks up to their shutdown timeout.
  void reap();
  std::vector<prometheus::MetricFamily> collect() const;

 private:
  struct Totals {
    double exported = 0, dropped = 0, failed = 0, retries = 0, queued = 0;
    void add(const OtlpExporter& e, bool with_queue);
  };
  void retire(OtlpExporter* exporter);

  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::weak_ptr<OtlpExporter>>> live_;
  std::vector<std::unique_ptr<OtlpExporter>> retired_;
  Totals finished_;  // exporters already shut down
};

}  // namespace sluice::observe
