#include "observe/tracing/exporter_pool.hpp"

#include <prometheus/metric_family.h>

#include "observe/metrics/metrics_registry.hpp"
#include "observe/rate_limited_warning.hpp"
#include "observe/shared_pool.hpp"

namespace sluice::observe {

namespace {

RateLimitedWarning warn_rate_limited("tracing");

}  // namespace

ExporterPool& ExporterPool::of(GatewayServices& services) {
  return shared_pool<ExporterPool>(services);
}

void ExporterTotals::add(const OtlpExporter& e, bool with_queue) {
  exported += static_cast<double>(e.exported_total());
  dropped += static_cast<double>(e.dropped_total());
  failed += static_cast<double>(e.failed_exports_total());
  retries += static_cast<double>(e.retries_total());
  if (with_queue) queued += static_cast<double>(e.queue_size());
}

std::shared_ptr<OtlpExporter> ExporterPool::get(const OtlpConfig& config, const std::string& key) {
  return RetiringPool::get(key, [&] {
    return new OtlpExporter(config, [](const std::string& m) { warn_rate_limited(m); });
  });
}

std::vector<prometheus::MetricFamily> ExporterPool::collect() const {
  const ExporterTotals t = totals();
  return {
      counter_family("sluice_otlp_spans_exported_total", "Spans accepted by the OTLP collector.",
                     t.exported),
      counter_family("sluice_otlp_spans_dropped_total",
                     "Spans lost: exporter queue full, or in a batch that failed for good.",
                     t.dropped),
      counter_family("sluice_otlp_export_failures_total",
                     "OTLP export batches given up on (non-retryable status or retries "
                     "exhausted).",
                     t.failed),
      counter_family("sluice_otlp_export_retries_total", "OTLP export attempts that were retried.",
                     t.retries),
      gauge_family("sluice_otlp_queue_spans", "Spans waiting in the OTLP exporter queue.",
                   t.queued),
  };
}

}  // namespace sluice::observe
