// HttpMetrics: the process-wide HTTP metric series (requests, durations, sizes, in-flight,
// per-middleware self time), recorded through sharded atomics and turned into Prometheus
// families at scrape time. Lives in GatewayServices::shared, so a reload keeps every series.
//
//   auto& m = services.shared.get_or_emplace<HttpMetrics>(MetricsOptions{});
//   RouteSeries* r = m.route("api");                        // lock-free after the first call
//   r->record(HttpMetrics::method_index("GET"), 200, 1ms, 0, 512);
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/verb.hpp>

#include "observe/latency_estimator.hpp"
#include "observe/metrics/intern_map.hpp"
#include "observe/metrics/sharded.hpp"

namespace prometheus {
struct MetricFamily;
}

namespace sluice::observe {

struct MetricsOptions {
  // Upper bounds, ascending. Durations in seconds: 100 µs ... 10 s by default.
  std::vector<double> duration_buckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10};
  // Body sizes in bytes: 64 B ... 16 MiB.
  std::vector<double> size_buckets = {64,    256,    1024,    4096,    16384,
                                      65536, 262144, 1048576, 4194304, 16777216};
  bool operator==(const MetricsOptions&) const = default;
};

// The standard methods keep their name as the label; everything else is "other".
inline constexpr std::array<std::string_view, 10> kMethodLabels = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"};

// One middleware on one route: the Prometheus histogram and the recent-window estimator that
// GET /stats/middlewares reads.
struct MiddlewareSeries {
  // Every middleware's estimator has this window length, so the metrics observer computes a
  // request's window number once (a division by a constant), not once per middleware.
  static constexpr std::chrono::nanoseconds kRecentWindow = std::chrono::seconds(10);
  explicit MiddlewareSeries(const std::vector<uint64_t>& bounds)
      : self_time(bounds), recent(kRecentWindow) {}
  ShardedHistogram self_time;  // ns
  LatencyEstimator recent;
};

class RouteSeries {
 public:
  RouteSeries(const std::vector<uint64_t>& duration_bounds,
              const std::vector<uint64_t>& size_bounds);
  ~RouteSeries();
  RouteSeries(const RouteSeries&) = delete;
  RouteSeries& operator=(const RouteSeries&) = delete;

  void record(std::size_t method, int status, std::chrono::nanoseconds duration, uint64_t bytes_in,
              uint64_t bytes_out) {
    with_shard_writer([&](auto w) { record_at(w, method, status, duration, bytes_in, bytes_out); });
  }
  // With the calling thread's shard resolved once (the metrics observer's request end).
  // Instantiated for both kinds of writer in http_metrics.cpp.
  template <bool Sole>
  void record_at(ShardWriter<Sole> shard, std::size_t method, int status,
                 std::chrono::nanoseconds duration, uint64_t bytes_in, uint64_t bytes_out);
  // nullptr when the per-route middleware limit (256 names) is reached.
  MiddlewareSeries* middleware(std::string_view name) {
    return middlewares_.get_or_create(name, [this] { return MiddlewareSeries(duration_bounds_); });
  }
  const MiddlewareSeries* find_middleware(std::string_view name) const {
    return middlewares_.find(name);
  }

 private:
  friend class HttpMetrics;
  static constexpr int kCodes = 600;  // status 100..599; anything else counts as code "other"
  struct MethodSeries {
    MethodSeries(const std::vector<uint64_t>& d, const std::vector<uint64_t>& s)
        : duration(d), request_size(s), response_size(s) {}
    ShardedHistogram duration;
    ShardedHistogram request_size;
    ShardedHistogram response_size;
    std::array<std::atomic<ShardedCounter*>, kCodes> codes{};
  };
  // Inline lookups (one acquire load each, per request); creation out of line, once per series.
  MethodSeries& method(std::size_t index) {
    if (MethodSeries* m = methods_[index].load(std::memory_order_acquire)) [[likely]]
      return *m;
    return create_method(index);
  }
  ShardedCounter& code(MethodSeries& m, int status) {
    const std::size_t index =
        status >= 100 && status < kCodes ? static_cast<std::size_t>(status) : 0;
    if (ShardedCounter* c = m.codes[index].load(std::memory_order_acquire)) [[likely]]
      return *c;
    return create_code(m, index);
  }
  MethodSeries& create_method(std::size_t index);
  ShardedCounter& create_code(MethodSeries& m, std::size_t index);

  const std::vector<uint64_t>& duration_bounds_;
  const std::vector<uint64_t>& size_bounds_;
  std::mutex create_mutex_;
  std::array<std::atomic<MethodSeries*>, kMethodLabels.size()> methods_{};
  InternMap<MiddlewareSeries> middlewares_{256};
};

class HttpMetrics {
 public:
  explicit HttpMetrics(MetricsOptions options = {});

  // The label index of a method's name (through Beast's string_to_verb, so both agree).
  static std::size_t method_index(std::string_view method);
  // The same from the parsed method (Beast parses every standard method to its verb): a table
  // lookup, where the name's text costs a switch to get and another to compare.
  static std::size_t method_index(boost::beast::http::verb method) {
    using boost::beast::http::verb;
    switch (method) {
      case verb::get:
        return 0;
      case verb::head:
        return 1;
      case verb::post:
        return 2;
      case verb::put:
        return 3;
      case verb::delete_:
        return 4;
      case verb::connect:
        return 5;
      case verb::options:
        return 6;
      case verb::trace:
        return 7;
      case verb::patch:
        return 8;
      default:
        return kMethodLabels.size() - 1;
    }
  }

  // nullptr when the route limit (1024 names) is reached: the request is then not recorded.
  RouteSeries* route(std::string_view name) {
    return routes_.get_or_create(name, [this] { return RouteSeries(duration_ns_, size_bytes_); });
  }
  const RouteSeries* find_route(std::string_view name) const { return routes_.find(name); }
  ShardedGauge& in_flight() { return in_flight_; }
  const MetricsOptions& options() const { return options_; }

  // The http_* families, built from the shards.
  std::vector<prometheus::MetricFamily> collect() const;

  // Every (route, middleware) pair, for GET /stats/middlewares.
  template <class Fn>
  void for_each_middleware(Fn&& fn) const {
    routes_.for_each([&](std::string_view route, const RouteSeries& r) {
      r.middlewares_.for_each(
          [&](std::string_view name, const MiddlewareSeries& m) { fn(route, name, m); });
    });
  }

 private:
  const MetricsOptions options_;
  const std::vector<uint64_t> duration_ns_;
  const std::vector<uint64_t> size_bytes_;
  ShardedGauge in_flight_;
  InternMap<RouteSeries> routes_{1024};
};

}  // namespace sluice::observe
