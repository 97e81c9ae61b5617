#include "observe/metrics/process_collector.hpp"

#include <prometheus/metric_family.h>

#include "observe/metrics/metrics_registry.hpp"
#include "observe/metrics/process_stats.hpp"

namespace sluice::observe {

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  auto s = read_process_stats(proc_root_);
  if (!s) return {};
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  return {
      counter_family("process_cpu_seconds_total",
                     "Total user and system CPU time spent in seconds.", s->cpu_seconds),
      gauge_family("process_resident_memory_bytes", "Resident memory size in bytes.",
                   d(s->resident_memory_bytes)),
      gauge_family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                   d(s->virtual_memory_bytes)),
      gauge_family("process_open_fds", "Number of open file descriptors.", d(s->open_fds)),
      gauge_family("process_max_fds", "Maximum number of open file descriptors.", d(s->max_fds)),
      gauge_family("process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds.", s->start_time_seconds),
  };
}

}  // namespace sluice::observe
