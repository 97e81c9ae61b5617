#include "observe/access_log/writer_pool.hpp"

#include <prometheus/metric_family.h>

#include "observe/metrics/metrics_registry.hpp"
#include "observe/rate_limited_warning.hpp"
#include "observe/shared_pool.hpp"

namespace sluice::observe {

namespace {

RateLimitedWarning warn_rate_limited("access_log");

std::string key_of(const AccessLogWriter::Options& o) {
  return o.path + '\n' + std::to_string(o.max_queue_lines) + '\n' +
         std::to_string(o.max_queue_bytes);
}

}  // namespace

WriterPool& WriterPool::of(GatewayServices& services) {
  return shared_pool<WriterPool>(services);
}

void AccessLogTotals::add(const AccessLogWriter& w, bool with_queue) {
  written += static_cast<double>(w.written_total());
  dropped += static_cast<double>(w.dropped_total());
  errors += static_cast<double>(w.write_errors_total());
  reopens += static_cast<double>(w.reopens_total());
  if (with_queue) queued += static_cast<double>(w.queue_size());
}

std::shared_ptr<AccessLogWriter> WriterPool::get(const AccessLogWriter::Options& options) {
  return RetiringPool::get(key_of(options), [&] {
    return new AccessLogWriter(options, [](const std::string& m) { warn_rate_limited(m); });
  });
}

std::vector<prometheus::MetricFamily> WriterPool::collect() const {
  const AccessLogTotals t = totals();
  return {
      counter_family("sluice_access_log_lines_written_total", "Access log lines written.",
                     t.written),
      counter_family("sluice_access_log_lines_dropped_total",
                     "Access log lines lost: queue full, or in a failed write.", t.dropped),
      counter_family("sluice_access_log_write_errors_total", "Failed access log writes.", t.errors),
      counter_family("sluice_access_log_reopens_total", "Access log file reopens (SIGUSR1).",
                     t.reopens),
      gauge_family("sluice_access_log_queue_lines", "Access log lines waiting to be written.",
                   t.queued),
  };
}

}  // namespace sluice::observe
