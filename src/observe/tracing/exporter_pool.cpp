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

ExporterPool::~ExporterPool() {
  reap();
}

void ExporterPool::Totals::add(const OtlpExporter& e, bool with_queue) {
  exported += static_cast<double>(e.exported_total());
  dropped += static_cast<double>(e.dropped_total());
  failed += static_cast<double>(e.failed_exports_total());
  retries += static_cast<double>(e.retries_total());
  if (with_queue) queued += static_cast<double>(e.queue_size());
}

std::shared_ptr<OtlpExporter> ExporterPool::get(const OtlpConfig& config, const std::string& key) {
  std::lock_guard lock(mu_);
  std::erase_if(live_, [](const auto& kv) { return kv.second.expired(); });
  for (const auto& [k, weak] : live_) {
    if (k != key) continue;
    if (auto e = weak.lock()) return e;
  }
  std::weak_ptr<ExporterPool> self = weak_from_this();
  std::shared_ptr<OtlpExporter> e(new OtlpExporter(config, warn_rate_limited),
                                  [self](OtlpExporter* raw) {
                                    if (auto pool = self.lock()) {
                                      pool->retire(raw);
                                    } else {
                                      raw->shutdown();
                                      delete raw;
                                    }
                                  });
  live_.emplace_back(key, e);
  return e;
}

void ExporterPool::retire(OtlpExporter* exporter) {
  std::lock_guard lock(mu_);
  retired_.emplace_back(exporter);
}

void ExporterPool::reap() {
  std::vector<std::unique_ptr<OtlpExporter>> done;
  {
    std::lock_guard lock(mu_);
    done.swap(retired_);
  }
  for (auto& e : done)
    e->shutdown();
  std::lock_guard lock(mu_);
  for (auto& e : done)
    finished_.add(*e, false);
}

std::vector<prometheus::MetricFamily> ExporterPool::collect() const {
  Totals t;
  {
    std::lock_guard lock(mu_);
    t = finished_;
    for (const auto& [key, weak] : live_) {
      if (auto e = weak.lock()) t.add(*e, true);
    }
    for (const auto& e : retired_)
      t.add(*e, true);
  }
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
