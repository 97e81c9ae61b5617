// ProcessCollector: Prometheus' standard process_* metrics, read from /proc at scrape time.
//
//   registry.add_collectable(std::make_shared<ProcessCollector>());
//   // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
#pragma once

#include <prometheus/collectable.h>
#include <string>

namespace sluice::observe {

class ProcessCollector final : public prometheus::Collectable {
 public:
  explicit ProcessCollector(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}
  // Empty when /proc cannot be read (not Linux): no process_* series rather than zeros.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string proc_root_;
};

}  // namespace sluice::observe
