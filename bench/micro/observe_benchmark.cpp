// Costs on the request path of the observability mechanisms (one call each).
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "observe/access_log/access_log_writer.hpp"
#include "observe/json_escape.hpp"
#include "observe/latency_estimator.hpp"
#include "observe/tracing/otlp_exporter.hpp"
#include "observe/tracing/sampler.hpp"
#include "observe/tracing/trace_context.hpp"

namespace sluice::observe {
namespace {

void BM_ParseTraceparent(benchmark::State& state) {
  const std::string h = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  for (auto _ : state)
    benchmark::DoNotOptimize(parse_traceparent(h));
}
BENCHMARK(BM_ParseTraceparent);

void BM_FormatTraceparent(benchmark::State& state) {
  TraceParent tp{0, random_trace_id(), random_span_id(), 1};
  for (auto _ : state)
    benchmark::DoNotOptimize(format_traceparent(tp));
}
BENCHMARK(BM_FormatTraceparent);

void BM_ParseTracestate(benchmark::State& state) {
  const std::string h = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,vendor@sys=abc";
  for (auto _ : state)
    benchmark::DoNotOptimize(parse_tracestate(h));
}
BENCHMARK(BM_ParseTracestate);

void BM_RandomIds(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(random_trace_id());
    benchmark::DoNotOptimize(random_span_id());
  }
}
BENCHMARK(BM_RandomIds);

void BM_SampleRatio(benchmark::State& state) {
  const Sampler s = Sampler::parent_based(Sampler::trace_id_ratio(0.5));
  const TraceId id = random_trace_id();
  for (auto _ : state)
    benchmark::DoNotOptimize(s.should_sample(nullptr, id));
}
BENCHMARK(BM_SampleRatio);

// A typical access-log line's variable fields: path, user agent, ids.
void BM_JsonEscapeTypicalLine(benchmark::State& state) {
  const std::string path = "/api/v1/users/12345/orders?page=2&sort=desc";
  const std::string ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari";
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_json_string(out, "GET");
    append_json_string(out, path);
    append_json_string(out, ua);
    append_json_string(out, "10.0.0.1");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * int64_t(path.size() + ua.size() + 11));
}
BENCHMARK(BM_JsonEscapeTypicalLine);

void BM_JsonEscapeHostile(benchmark::State& state) {
  const std::string s = "a\"b\\c\n\r\t\x01\x7f caf\xc3\xa9 \xff\xc0\xaf \xed\xa0\x80 end";
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_json_escaped(out, s);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_JsonEscapeHostile);

SpanData typical_span() {
  SpanData s;
  s.trace_id = random_trace_id();
  s.span_id = random_span_id();
  s.name = "GET /users/{id}";
  s.start_unix_nano = 1700000000000000000ULL;
  s.end_unix_nano = s.start_unix_nano + 250000;
  s.attributes = {
      {"http.request.method", "GET"},        {"url.path", "/users/42"},
      {"http.route", "/users/{id}"},         {"http.response.status_code", int64_t{200}},
      {"server.address", "api.example.com"}, {"client.address", "10.0.0.1"},
      {"user_agent.original", "curl/8.0"}};
  return s;
}

// Copying a typical span: subtract from BM_ExporterEnqueue to get the enqueue alone.
void BM_CopySpan(benchmark::State& state) {
  const SpanData proto = typical_span();
  for (auto _ : state) {
    SpanData s = proto;
    benchmark::DoNotOptimize(s.attributes.data());
  }
}
BENCHMARK(BM_CopySpan);

// Copy + enqueue with an idle export thread (batch size = queue size, no timer): the cost a
// request pays when the exporter is not competing for the lock or the CPU.
void BM_ExporterEnqueue(benchmark::State& state) {
  OtlpConfig cfg;
  cfg.endpoint = "http://127.0.0.1:9";
  cfg.max_queue_size = 1 << 20;
  cfg.max_export_batch_size = 1 << 20;
  cfg.schedule_delay = std::chrono::hours(1);
  cfg.max_retries = 0;
  OtlpExporter exporter(cfg);
  const SpanData proto = typical_span();
  for (auto _ : state) {
    SpanData s = proto;
    benchmark::DoNotOptimize(exporter.enqueue(std::move(s)));
  }
  state.counters["dropped"] = double(exporter.dropped_total());
  exporter.shutdown(std::chrono::milliseconds(0));
}
BENCHMARK(BM_ExporterEnqueue)->Iterations(300000);

// Copy + enqueue while the export thread drains: nothing listens on the collector port, so it
// fails batches fast and frees them (as when the collector is down), competing for the lock,
// the allocator and the CPU (2 cores here).
void BM_ExporterEnqueueDraining(benchmark::State& state) {
  OtlpConfig cfg;
  cfg.endpoint = "http://127.0.0.1:9";
  cfg.max_queue_size = 1 << 20;
  cfg.max_export_batch_size = 512;
  cfg.max_retries = 0;
  OtlpExporter exporter(cfg);
  const SpanData proto = typical_span();
  for (auto _ : state) {
    SpanData s = proto;
    benchmark::DoNotOptimize(exporter.enqueue(std::move(s)));
  }
  exporter.shutdown(std::chrono::milliseconds(0));
}
BENCHMARK(BM_ExporterEnqueueDraining)->Iterations(300000);

void BM_EncodeOtlpJson512(benchmark::State& state) {
  OtlpConfig cfg;
  std::vector<SpanData> spans(512, typical_span());
  for (auto _ : state)
    benchmark::DoNotOptimize(encode_otlp_json(cfg, spans.data(), 512));
  state.SetItemsProcessed(state.iterations() * 512);
}
BENCHMARK(BM_EncodeOtlpJson512);

void BM_AccessLogWrite(benchmark::State& state) {
  static AccessLogWriter* log = nullptr;
  if (state.thread_index() == 0) {
    log = new AccessLogWriter({.path = "/dev/null", .max_queue_lines = 1 << 20});
  }
  const std::string line(300, 'x');
  for (auto _ : state) {
    std::string copy = line;  // the caller builds a fresh line per request anyway
    benchmark::DoNotOptimize(log->write(std::move(copy)));
  }
  if (state.thread_index() == 0) {
    state.counters["dropped"] = double(log->dropped_total());
    delete log;
  }
}
BENCHMARK(BM_AccessLogWrite)->Threads(1)->Threads(2);

void BM_EstimatorRecord(benchmark::State& state) {
  static LatencyEstimator est;
  int64_t n = 1000;
  for (auto _ : state) {
    est.record(std::chrono::steady_clock::now(), std::chrono::nanoseconds(n));
    n = n * 7 % 100003 + 1000;
  }
}
BENCHMARK(BM_EstimatorRecord)->Threads(1)->Threads(2);

void BM_EstimatorClassify(benchmark::State& state) {
  LatencyEstimator est;
  const auto now = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i)
    est.record(now, std::chrono::microseconds(i % 1000));
  for (auto _ : state) {
    benchmark::DoNotOptimize(est.classify(now, std::chrono::microseconds(700)));
  }
}
BENCHMARK(BM_EstimatorClassify);

void BM_EstimatorSnapshot(benchmark::State& state) {
  LatencyEstimator est;
  const auto now = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i)
    est.record(now, std::chrono::microseconds(i % 1000));
  for (auto _ : state)
    benchmark::DoNotOptimize(est.snapshot(now));
}
BENCHMARK(BM_EstimatorSnapshot);

}  // namespace
}  // namespace sluice::observe
