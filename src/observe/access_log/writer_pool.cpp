#include "observe/access_log/writer_pool.hpp"

#include <prometheus/metric_family.h>
#include <spdlog/spdlog.h>
#include <atomic>

#include "observe/metrics/metrics_registry.hpp"

namespace sluice::observe {

namespace {

struct PoolHolder {
  std::shared_ptr<WriterPool> pool = std::make_shared<WriterPool>();
  std::shared_ptr<FunctionCollectable> metrics;
};

void warn_rate_limited(const std::string& message) {
  static std::atomic<int64_t> next_ns{0};
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t due = next_ns.load(std::memory_order_relaxed);
  if (now < due || !next_ns.compare_exchange_strong(due, now + 10'000'000'000)) return;
  spdlog::warn("access_log: {}", message);
}

std::string key_of(const AccessLogWriter::Options& o) {
  return o.path + '\n' + std::to_string(o.max_queue_lines) + '\n' +
         std::to_string(o.max_queue_bytes);
}

}  // namespace

WriterPool& WriterPool::of(GatewayServices& services) {
  auto* holder = services.shared.get<PoolHolder>();
  if (holder == nullptr) {
    holder = &services.shared.emplace<PoolHolder>();
    std::weak_ptr<WriterPool> weak = holder->pool;
    holder->metrics = std::make_shared<FunctionCollectable>([weak] {
      auto pool = weak.lock();
      return pool ? pool->collect() : std::vector<prometheus::MetricFamily>{};
    });
    if (services.metrics) add_collectable(*services.metrics, holder->metrics);
  }
  return *holder->pool;
}

void AccessLogTotals::add(const AccessLogWriter& w, bool with_queue) {
  written += static_cast<double>(w.written_total());
  dropped += static_cast<double>(w.dropped_total());
  errors += static_cast<double>(w.write_errors_total());
  reopens += static_cast<double>(w.reopens_total());
  if (with_queue) queued += static_cast<double>(w.queue_size());
}

std::shared_ptr<AccessLogWriter> WriterPool::get(const AccessLogWriter::Options& options) {
  return RetiringPool::get(key_of(options),
                           [&] { return new AccessLogWriter(options, warn_rate_limited); });
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
