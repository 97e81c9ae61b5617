// CPU per request of the observers (metrics, tracing at 100 % sampling, access log to /dev/null)
// through a chain of 3 no-op middlewares, each alone and together; and the histogram choice:
// prometheus-cpp's mutex-based Histogram::Observe versus sluice's per-worker shards, from one
// and two threads on one shared series.
//
//   build-x/sluice_micro_bench --benchmark_filter='Observers|Histogram' --benchmark_min_time=0.2
//
// BM_Observers/N: CPU of the request thread only. BM_ObserversAllThreads/N: CPU of every thread
// of the process, so the exporter's span encoding and the log writer's formatting count too.
// BM_ObserversFixed/N runs a fixed 20000 requests, for instruction counts under callgrind:
//   valgrind --tool=callgrind build-x/sluice_micro_bench --benchmark_filter='ObserversFixed/7'
#include <benchmark/benchmark.h>
#include <prometheus/histogram.h>

#include "observe/access_log/access_log_observer.hpp"
#include "observe/metrics/http_metrics.hpp"
#include "observe/metrics/metrics_observer.hpp"
#include "observe/tracing/tracing_observer.hpp"
#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"

namespace {
using namespace sluice;
using namespace sluice::observe;

const std::vector<double> kBounds = MetricsOptions{}.duration_buckets;

prometheus::Histogram& shared_prometheus_histogram() {
  static prometheus::Histogram h(kBounds);
  return h;
}
ShardedHistogram& shared_sharded_histogram() {
  static ShardedHistogram h([] {
    std::vector<uint64_t> ns;
    for (double b : kBounds)
      ns.push_back(static_cast<uint64_t>(b * 1e9));
    return ns;
  }());
  return h;
}

void BM_PrometheusHistogramObserve(benchmark::State& state) {
  auto& h = shared_prometheus_histogram();
  double v = 0.00003;
  for (auto _ : state) {
    h.Observe(v);
    v += 1e-9;
  }
}
BENCHMARK(BM_PrometheusHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

void BM_ShardedHistogramObserve(benchmark::State& state) {
  auto& h = shared_sharded_histogram();
  uint64_t v = 30'000;
  for (auto _ : state) {
    h.observe(v);
    ++v;
  }
}
BENCHMARK(BM_ShardedHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

// As the gateway's workers record: each thread claims a shard of its own and is its only
// writer, so its adds are plain loads and stores (BM_ShardedHistogramObserve's threads claim
// none: they share the last shard, with lock-prefixed adds).
void BM_ShardedHistogramObserveSoleWriter(benchmark::State& state) {
  auto& h = shared_sharded_histogram();
  claim_shard_index(static_cast<std::size_t>(state.thread_index()));
  uint64_t v = 30'000;
  for (auto _ : state) {
    h.observe(v);
    ++v;
  }
  // Back to the shared shard (giving the claim up): the main thread runs the other benchmarks.
  claim_shard_index(shard_count() - 1);
}
BENCHMARK(BM_ShardedHistogramObserveSoleWriter)->Threads(1)->Threads(2)->UseRealTime();

class Noop final : public Middleware {
 public:
  explicit Noop(std::string n) : name_(std::move(n)) {}
  std::string_view name() const override { return name_; }
  Decision pre_handle(Exchange&) override { return Decision::next(); }

 private:
  std::string name_;
};

class Ok final : public Handler {
 public:
  std::string_view kind() const override { return "ok"; }
  Decision handle(Exchange& ex) override {
    ex.response().set_status(200);
    return Decision::respond();
  }
};

enum Which { kNone = 0, kMetrics = 1, kTracing = 2, kAccessLog = 4 };

void BM_Observers(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  static HttpMetrics metrics;
  static RouteLatencies latencies(16);
  std::vector<std::shared_ptr<Observer>> observers;
  std::shared_ptr<OtlpExporter> exporter;
  std::shared_ptr<AccessLogWriter> writer;
  if (which & kMetrics) observers.push_back(std::make_shared<MetricsObserver>(metrics));
  if (which & kTracing) {
    OtlpConfig c;
    c.endpoint = "http://127.0.0.1:1";  // closed: every batch is encoded, then fails
    c.max_retries = 0;
    c.max_queue_size = 1 << 16;  // the exporter keeps up, as in bench/load: spans are encoded
    c.schedule_delay = std::chrono::milliseconds(50);
    exporter = std::make_shared<OtlpExporter>(c);
    observers.push_back(std::make_shared<TracingObserver>(Sampler::always_on(), exporter, false));
  }
  if (which & kAccessLog) {
    writer = std::make_shared<AccessLogWriter>(AccessLogWriter::Options{.path = "/dev/null"});
    observers.push_back(std::make_shared<AccessLogObserver>(writer, latencies));
  }
  Chain chain("bench", observers);
  for (int i = 0; i < 3; ++i)
    chain.use(std::make_shared<Noop>("m" + std::to_string(i)));
  RouteInfo info{"bench"};
  auto host = std::make_shared<testing::ManualHost>();
  Ok handler;
  for (auto _ : state) {
    Exchange& ex = host->exchange("GET", "/api/users/42?x=1");
    ex.request().set_header("Host", "api.example.com");
    ex.request().set_header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0");
    ex.context().set_client_ip("192.0.2.10");
    ex.context().set_request_id("0123456789abcdef0123456789abcdef");
    ExchangeDriver(ex).set_route(&info);
    auto lease = chain.acquire();
    ExchangeDriver(ex).run(*lease, handler, [] {});
  }
  state.SetLabel(which == 0   ? "none"
                 : which == 7 ? "all"
                 : which == 1 ? "metrics"
                 : which == 2 ? "tracing"
                              : "access_log");
  if (exporter) exporter->shutdown(std::chrono::milliseconds(0));
  if (writer) writer->shutdown();
}
BENCHMARK(BM_Observers)->Arg(kNone)->Arg(kMetrics)->Arg(kTracing)->Arg(kAccessLog)->Arg(7);
BENCHMARK(BM_Observers)
    ->Name("BM_ObserversAllThreads")
    ->Arg(kNone)
    ->Arg(kTracing)
    ->Arg(kAccessLog)
    ->Arg(7)
    ->MeasureProcessCPUTime();
BENCHMARK(BM_Observers)->Name("BM_ObserversFixed")->Arg(kNone)->Arg(7)->Iterations(20000);

}  // namespace
