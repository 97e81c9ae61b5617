#include "observe/tracing/exporter_pool.hpp"

#include <prometheus/metric_family.h>
#include <spdlog/spdlog.h>
#include <atomic>

#include "observe/metrics/metrics_registry.hpp"

namespace sluice::observe {

namespace {

struct PoolHolder {
  std::shared_ptr<ExporterPool> pool = std::make_shared<ExporterPool>();
  std::shared_ptr<FunctionCollectable> metrics;
};

// An unreachable collector fails every batch: one warning per 10 s is enough.
void warn_rate_limited(const std::string& message) {
  static std::atomic<int64_t> next_ns{0};
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t due = next_ns.load(std::memory_order_relaxed);
  if (now < due || !next_ns.compare_exchange_strong(due, now + 10'000'000'000)) return;
  spdlog::warn("tracing: {}", message);
}

}  // namespace

ExporterPool& ExporterPool::of(GatewayServices& services) {
  auto* holder = services.shared.get<PoolHolder>();
  if (holder == nullptr) {
    holder = &services.shared.emplace<PoolHolder>();
    std::weak_ptr<ExporterPool> weak = holder->pool;
    holder->metrics = std::make_shared<FunctionCollectable>([weak] {
      auto pool = weak.lock();
      return pool ? pool->collect() : std::vector<prometheus::MetricFamily>{};
    });
    if (services.metrics) add_collectable(*services.metrics, holder->metrics);
  }
  return *holder->pool;
}

void ExporterTotals::add(const OtlpExporter& e, bool with_queue) {
  exported += static_cast<double>(e.exported_total());
  dropped += static_cast<double>(e.dropped_total());
  failed += static_cast<double>(e.failed_exports_total());
  retries += static_cast<double>(e.retries_total());
  if (with_queue) queued += static_cast<double>(e.queue_size());
}

std::shared_ptr<OtlpExporter> ExporterPool::get(const OtlpConfig& config, const std::string& key) {
  return RetiringPool::get(key, [&] { return new OtlpExporter(config, warn_rate_limited); });
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
