#include "observe/metrics/http_metrics.hpp"

#include <prometheus/metric_family.h>
#include <cmath>

namespace sluice::observe {

namespace {

std::vector<uint64_t> scaled(const std::vector<double>& bounds, double scale) {
  std::vector<uint64_t> out;
  out.reserve(bounds.size());
  for (double b : bounds)
    out.push_back(static_cast<uint64_t>(std::llround(b * scale)));
  return out;
}

prometheus::ClientMetric histogram_metric(const ShardedHistogram& h,
                                          const std::vector<double>& bounds, double unit,
                                          std::vector<prometheus::ClientMetric::Label> labels) {
  const auto t = h.totals();
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < t.counts.size(); ++i) {
    cumulative += t.counts[i];
    const double upper = i < bounds.size() ? bounds[i] : INFINITY;
    m.histogram.bucket.push_back({cumulative, upper});
  }
  // The count is the +Inf bucket, so a scrape racing with observe() stays self-consistent.
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = static_cast<double>(t.sum) * unit;
  return m;
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

}  // namespace

RouteSeries::RouteSeries(const std::vector<uint64_t>& duration_bounds,
                         const std::vector<uint64_t>& size_bounds)
    : duration_bounds_(duration_bounds), size_bounds_(size_bounds) {}

RouteSeries::~RouteSeries() {
  for (auto& slot : methods_) {
    MethodSeries* m = slot.load(std::memory_order_relaxed);
    if (m == nullptr) continue;
    for (auto& c : m->codes)
      delete c.load(std::memory_order_relaxed);
    delete m;
  }
}

RouteSeries::MethodSeries& RouteSeries::create_method(std::size_t index) {
  auto& slot = methods_[index];
  std::lock_guard lock(create_mutex_);
  if (MethodSeries* m = slot.load(std::memory_order_acquire)) return *m;
  auto* m = new MethodSeries(duration_bounds_, size_bounds_);
  slot.store(m, std::memory_order_release);
  return *m;
}

ShardedCounter& RouteSeries::create_code(MethodSeries& m, std::size_t index) {
  auto& slot = m.codes[index];
  std::lock_guard lock(create_mutex_);
  if (ShardedCounter* c = slot.load(std::memory_order_acquire)) return *c;
  auto* c = new ShardedCounter();
  slot.store(c, std::memory_order_release);
  return *c;
}

template <bool Sole>
void RouteSeries::record_at(ShardWriter<Sole> shard, std::size_t method_index, int status,
                            std::chrono::nanoseconds duration, uint64_t bytes_in,
                            uint64_t bytes_out) {
  MethodSeries& m = method(method_index);
  code(m, status).add_at(shard);
  m.duration.observe_at(shard, static_cast<uint64_t>(std::max<int64_t>(0, duration.count())));
  m.request_size.observe_at(shard, bytes_in);
  m.response_size.observe_at(shard, bytes_out);
}
template void RouteSeries::record_at(ShardWriter<true>, std::size_t, int, std::chrono::nanoseconds,
                                     uint64_t, uint64_t);
template void RouteSeries::record_at(ShardWriter<false>, std::size_t, int, std::chrono::nanoseconds,
                                     uint64_t, uint64_t);

HttpMetrics::HttpMetrics(MetricsOptions options)
    : options_(std::move(options)),
      duration_ns_(scaled(options_.duration_buckets, 1e9)),
      size_bytes_(scaled(options_.size_buckets, 1)) {}

std::size_t HttpMetrics::method_index(std::string_view method) {
  // Beast's parser maps the same exact, case-sensitive names ("get" is not GET): one table.
  return method_index(boost::beast::http::string_to_verb(method));
}

std::vector<prometheus::MetricFamily> HttpMetrics::collect() const {
  using prometheus::MetricType;
  auto requests = family("http_requests_total",
                         "HTTP requests that ran through a route's chain, by route, method and "
                         "status code.",
                         MetricType::Counter);
  auto duration = family("http_request_duration_seconds",
                         "Time from the start of the request to its final response, by route "
                         "and method.",
                         MetricType::Histogram);
  auto req_size = family("http_request_size_bytes", "Request body sizes, by route and method.",
                         MetricType::Histogram);
  auto resp_size = family("http_response_size_bytes", "Response body sizes, by route and method.",
                          MetricType::Histogram);
  auto middleware = family("http_middleware_duration_seconds",
                           "Self time of each middleware (pre_handle + post_handle), by "
                           "middleware and route.",
                           MetricType::Histogram);
  auto in_flight =
      family("http_requests_in_flight",
             "Requests that entered a route's chain and have not finished yet.", MetricType::Gauge);
  prometheus::ClientMetric g;
  g.gauge.value = static_cast<double>(in_flight_.value());
  in_flight.metric.push_back(std::move(g));

  const auto& db = options_.duration_buckets;
  const auto& sb = options_.size_buckets;
  routes_.for_each([&](std::string_view route, const RouteSeries& r) {
    for (std::size_t mi = 0; mi < r.methods_.size(); ++mi) {
      const auto* m = r.methods_[mi].load(std::memory_order_acquire);
      if (m == nullptr) continue;
      std::vector<prometheus::ClientMetric::Label> labels = {
          {"route", std::string(route)}, {"method", std::string(kMethodLabels[mi])}};
      duration.metric.push_back(histogram_metric(m->duration, db, 1e-9, labels));
      req_size.metric.push_back(histogram_metric(m->request_size, sb, 1, labels));
      resp_size.metric.push_back(histogram_metric(m->response_size, sb, 1, labels));
      for (int code = 0; code < RouteSeries::kCodes; ++code) {
        const auto* c = m->codes[static_cast<std::size_t>(code)].load(std::memory_order_acquire);
        if (c == nullptr) continue;
        prometheus::ClientMetric cm;
        cm.label = labels;
        cm.label.push_back({"code", code == 0 ? "other" : std::to_string(code)});
        cm.counter.value = static_cast<double>(c->value());
        requests.metric.push_back(std::move(cm));
      }
    }
    r.middlewares_.for_each([&](std::string_view name, const MiddlewareSeries& s) {
      middleware.metric.push_back(
          histogram_metric(s.self_time, db, 1e-9,
                           {{"middleware", std::string(name)}, {"route", std::string(route)}}));
    });
  });
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&requests, &duration, &req_size, &resp_size, &middleware, &in_flight}) {
    if (!f->metric.empty()) out.push_back(std::move(*f));
  }
  return out;
}

}  // namespace sluice::observe
