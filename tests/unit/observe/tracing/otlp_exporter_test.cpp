// httplib options first: see core/httplib_options.hpp.
#include "core/httplib_options.hpp"

#include "observe/tracing/otlp_exporter.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/cpu_waits.hpp"
#include "support/thread_files.hpp"

namespace sluice::observe {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Waits for a condition driven by another thread (not for time to pass); fails after 10 s.
template <typename Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

// A minimal OTLP/HTTP collector on 127.0.0.1, port 0. `fail_next` requests get `fail_status`.
class TestCollector {
 public:
  TestCollector() {
    server_.Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::unique_lock lock(mu_);
        times_.push_back(std::chrono::steady_clock::now());
        content_types_.push_back(req.get_header_value("Content-Type"));
        auth_.push_back(req.get_header_value("Authorization"));
        blocked_cv_.wait(lock, [&] { return !block_; });
      }
      if (fail_next_.load() > 0) {
        fail_next_.fetch_sub(1);
        res.status = fail_status_.load();
        if (!retry_after_.empty()) res.set_header("Retry-After", retry_after_);
        return;
      }
      std::lock_guard lock(mu_);
      bodies_.push_back(json::parse(req.body));
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    eventually([&] { return server_.is_running(); });
  }
  ~TestCollector() {
    release();
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void fail(int n, int status, std::string retry_after = "") {
    retry_after_ = std::move(retry_after);
    fail_status_ = status;
    fail_next_ = n;
  }
  void block() {
    std::lock_guard lock(mu_);
    block_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      block_ = false;
    }
    blocked_cv_.notify_all();
  }
  std::size_t requests() {
    std::lock_guard lock(mu_);
    return times_.size();
  }
  std::vector<json> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::chrono::steady_clock::time_point> times() {
    std::lock_guard lock(mu_);
    return times_;
  }
  std::vector<std::string> content_types() {
    std::lock_guard lock(mu_);
    return content_types_;
  }
  std::vector<std::string> auth() {
    std::lock_guard lock(mu_);
    return auth_;
  }
  // All spans received, in order.
  std::vector<json> spans() {
    std::vector<json> out;
    for (const auto& b : bodies()) {
      for (const auto& s : b["resourceSpans"][0]["scopeSpans"][0]["spans"])
        out.push_back(s);
    }
    return out;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable blocked_cv_;
  bool block_ = false;
  std::vector<json> bodies_;
  std::vector<std::chrono::steady_clock::time_point> times_;
  std::vector<std::string> content_types_;
  std::vector<std::string> auth_;
  std::atomic<int> fail_next_{0};
  std::atomic<int> fail_status_{503};
  std::string retry_after_;
};

OtlpConfig test_config(const TestCollector& c) {
  OtlpConfig cfg;
  cfg.endpoint = c.endpoint();
  cfg.service_name = "sluice-test";
  cfg.resource_attributes = {{"deployment.environment", "test"}};
  cfg.schedule_delay = 1h;  // only size, flush and shutdown trigger exports unless a test says
  cfg.export_timeout = 2s;
  cfg.max_retries = 3;
  cfg.initial_backoff = 5ms;
  return cfg;
}

SpanData make_span(const TraceId& trace, const SpanId& parent, std::string name) {
  SpanData s;
  s.trace_id = trace;
  s.span_id = random_span_id();
  s.parent_span_id = parent;
  s.name = std::move(name);
  s.start_unix_nano = 1700000000123456789ULL;
  s.end_unix_nano = 1700000000223456789ULL;
  return s;
}

std::string attr_key_value(const json& attrs, const std::string& key, const char* type) {
  for (const auto& a : attrs) {
    if (a["key"] == key) return a["value"][type].dump();
  }
  return "<missing>";
}

TEST(OtlpExporter, ExportsIdsParentLinksAndAttributes) {
  TestCollector collector;
  auto cfg = test_config(collector);
  cfg.headers = {{"Authorization", "Bearer t"}};
  OtlpExporter exporter(cfg);
  EXPECT_EQ(exporter.url(), collector.endpoint() + "/v1/traces");

  const TraceId trace = random_trace_id();
  SpanData root = make_span(trace, SpanId{}, "GET /users/{id}");
  root.kind = kSpanKindServer;
  root.trace_state = "rojo=00f067aa0ba902b7";
  root.attributes = {{"http.request.method", "GET"},
                     {"http.response.status_code", int64_t{503}},
                     {"big", int64_t{-9223372036854775807LL - 1}},
                     {"ratio", 0.25},
                     {"nan", std::nan("")},
                     {"ok", false},
                     {"user_agent.original", std::string("evil\"\n\xff agent")}};
  root.status_code = kStatusError;
  root.status_message = "upstream unavailable";
  SpanData child = make_span(trace, root.span_id, "rate_limit");
  child.kind = kSpanKindInternal;
  const std::string root_id = to_hex(root.span_id);
  const std::string child_id = to_hex(child.span_id);

  ASSERT_TRUE(exporter.enqueue(std::move(root)));
  ASSERT_TRUE(exporter.enqueue(std::move(child)));
  ASSERT_TRUE(exporter.flush(5s));
  EXPECT_EQ(exporter.exported_total(), 2u);
  EXPECT_EQ(exporter.queue_size(), 0u);
  EXPECT_EQ(exporter.dropped_total(), 0u);

  ASSERT_EQ(collector.bodies().size(), 1u);
  EXPECT_EQ(collector.content_types()[0], "application/json");
  EXPECT_EQ(collector.auth()[0], "Bearer t");
  const json body = collector.bodies()[0];
  const json& resource = body["resourceSpans"][0]["resource"];
  EXPECT_EQ(attr_key_value(resource["attributes"], "service.name", "stringValue"),
            "\"sluice-test\"");
  EXPECT_EQ(attr_key_value(resource["attributes"], "deployment.environment", "stringValue"),
            "\"test\"");
  EXPECT_EQ(body["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"], "sluice");

  const auto spans = collector.spans();
  ASSERT_EQ(spans.size(), 2u);
  const json& r = spans[0];
  EXPECT_EQ(r["traceId"], to_hex(trace));
  EXPECT_EQ(r["spanId"], root_id);
  EXPECT_FALSE(r.contains("parentSpanId"));
  EXPECT_EQ(r["traceState"], "rojo=00f067aa0ba902b7");
  EXPECT_EQ(r["name"], "GET /users/{id}");
  EXPECT_EQ(r["kind"], 2);
  EXPECT_EQ(r["startTimeUnixNano"], "1700000000123456789");
  EXPECT_EQ(r["endTimeUnixNano"], "1700000000223456789");
  EXPECT_EQ(r["status"]["code"], 2);
  EXPECT_EQ(r["status"]["message"], "upstream unavailable");
  EXPECT_EQ(attr_key_value(r["attributes"], "http.request.method", "stringValue"), "\"GET\"");
  EXPECT_EQ(attr_key_value(r["attributes"], "http.response.status_code", "intValue"), "\"503\"");
  EXPECT_EQ(attr_key_value(r["attributes"], "big", "intValue"), "\"-9223372036854775808\"");
  EXPECT_EQ(attr_key_value(r["attributes"], "ratio", "doubleValue"), "0.25");
  EXPECT_EQ(attr_key_value(r["attributes"], "nan", "doubleValue"), "\"NaN\"");
  EXPECT_EQ(attr_key_value(r["attributes"], "ok", "boolValue"), "false");
  EXPECT_EQ(attr_key_value(r["attributes"], "user_agent.original", "stringValue"),
            "\"evil\\\"\\n\xef\xbf\xbd agent\"");

  const json& c = spans[1];
  EXPECT_EQ(c["traceId"], to_hex(trace));
  EXPECT_EQ(c["parentSpanId"], root_id);
  EXPECT_EQ(c["spanId"], child_id);
  EXPECT_EQ(c["kind"], 1);
  EXPECT_FALSE(c.contains("status"));
}

// The export thread has a file table of its own (core/own_file_table.hpp): the process's sockets
// are not in it, and its connection to the collector is not in the process's table.
TEST(OtlpExporter, ExportsFromAFileTableOfItsOwn) {
  if (!sluice::testing::kOwnFileTables) GTEST_SKIP() << "ThreadSanitizer build: tables shared";
  using sluice::testing::sockets_of;
  TestCollector collector;
  const int socket_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // the "worker's"
  ASSERT_GE(socket_fd, 0);
  OtlpExporter exporter(test_config(collector));
  ASSERT_TRUE(exporter.enqueue(make_span(random_trace_id(), {}, "own table")));
  ASSERT_TRUE(exporter.flush(5s));
  EXPECT_EQ(exporter.exported_total(), 1u);
  const auto exporters = sluice::testing::threads_named(::getpid(), "sluice-otlp");
  ASSERT_EQ(exporters.size(), 1u);
  EXPECT_FALSE(sluice::testing::shares_file_table(::getpid(), exporters[0]));
  const auto mine = sockets_of(::getpid(), ::gettid());
  const auto its = sockets_of(::getpid(), exporters[0]);
  EXPECT_EQ(its.size(), 1u) << "its keep-alive connection to the collector";
  for (const auto& s : its)
    EXPECT_EQ(mine.count(s), 0u) << s << " is in both tables";
  ::close(socket_fd);
}

TEST(OtlpExporter, BatchesBySize) {
  TestCollector collector;
  auto cfg = test_config(collector);
  cfg.max_export_batch_size = 10;
  OtlpExporter exporter(cfg);
  const TraceId trace = random_trace_id();
  for (int i = 0; i < 25; ++i)
    ASSERT_TRUE(exporter.enqueue(make_span(trace, {}, "s")));
  // Two full batches go without a flush; the remaining 5 wait for the timer or a flush.
  ASSERT_TRUE(eventually([&] { return exporter.exported_total() >= 20; }));
  ASSERT_TRUE(exporter.flush(5s));
  EXPECT_EQ(exporter.exported_total(), 25u);
  const auto bodies = collector.bodies();
  ASSERT_GE(bodies.size(), 3u);
  std::size_t total = 0;
  for (const auto& b : bodies) {
    const auto n = b["resourceSpans"][0]["scopeSpans"][0]["spans"].size();
    EXPECT_LE(n, 10u);
    total += n;
  }
  EXPECT_EQ(total, 25u);
}

TEST(OtlpExporter, ExportsOnTheScheduleWithoutFlush) {
  TestCollector collector;
  auto cfg = test_config(collector);
  cfg.schedule_delay = 50ms;
  OtlpExporter exporter(cfg);
  ASSERT_TRUE(exporter.enqueue(make_span(random_trace_id(), {}, "timed")));
  // The collector stores the body before it answers, and the exporter counts the span only
  // after the answer: wait for the count (the later of the two), not for a fixed time.
  ASSERT_TRUE(eventually([&] { return exporter.exported_total() == 1u; }));
  const auto spans = collector.spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0]["name"], "timed");
  EXPECT_EQ(exporter.dropped_total(), 0u);
}

TEST(OtlpExporter, RetriesOn503ThenSucceeds) {
  TestCollector collector;
  collector.fail(2, 503);
  OtlpExporter exporter(test_config(collector));
  ASSERT_TRUE(exporter.enqueue(make_span(random_trace_id(), {}, "retried")));
  ASSERT_TRUE(exporter.flush(5s));
  EXPECT_EQ(collector.requests(), 3u);
  EXPECT_EQ(exporter.retries_total(), 2u);
  EXPECT_EQ(exporter.exported_total(), 1u);
  EXPECT_EQ(exporter.failed_exports_total(), 0u);
}

TEST(OtlpExporter, HonoursRetryAfter) {
  TestCollector collector;
  collector.fail(1, 429, "1");
  OtlpExporter exporter(test_config(collector));  // backoff 5 ms, but Retry-After says 1 s
  ASSERT_TRUE(exporter.enqueue(make_span(random_trace_id(), {}, "throttled")));
  ASSERT_TRUE(exporter.flush(5s));
  const auto times = collector.times();
  ASSERT_EQ(times.size(), 2u);
  EXPECT_GE(times[1] - times[0], 900ms);
  EXPECT_EQ(exporter.exported_total(), 1u);
}

TEST(OtlpExporter, GivesUpAfterMaxRetriesAndCounts) {
  TestCollector collector;
  collector.fail(100, 503);
  std::atomic<int> errors{0};
  OtlpExporter exporter(test_config(collector), [&](const std::string&) { ++errors; });
  for (int i = 0; i < 3; ++i)
    exporter.enqueue(make_span(random_trace_id(), {}, "lost"));
  ASSERT_TRUE(exporter.flush(5s));
  EXPECT_EQ(collector.requests(), 4u);  // 1 + max_retries
  EXPECT_EQ(exporter.failed_exports_total(), 1u);
  EXPECT_EQ(exporter.dropped_total(), 3u);
  EXPECT_EQ(exporter.exported_total(), 0u);
  EXPECT_EQ(errors.load(), 1);
}

TEST(OtlpExporter, DoesNotRetryABadRequest) {
  TestCollector collector;
  collector.fail(1, 400);
  OtlpExporter exporter(test_config(collector));
  exporter.enqueue(make_span(random_trace_id(), {}, "rejected"));
  ASSERT_TRUE(exporter.flush(5s));
  EXPECT_EQ(collector.requests(), 1u);
  EXPECT_EQ(exporter.failed_exports_total(), 1u);
  EXPECT_EQ(exporter.dropped_total(), 1u);
}

TEST(OtlpExporter, CollectorDownDropsAndCounts) {
  std::string endpoint;
  {
    TestCollector gone;
    endpoint = gone.endpoint();
  }
  OtlpConfig cfg;
  cfg.endpoint = endpoint;
  cfg.schedule_delay = 1h;
  cfg.max_retries = 2;
  cfg.initial_backoff = 1ms;
  cfg.export_timeout = 1s;
  std::string last_error;
  std::mutex mu;
  OtlpExporter exporter(cfg, [&](const std::string& e) {
    std::lock_guard lock(mu);
    last_error = e;
  });
  for (int i = 0; i < 5; ++i)
    exporter.enqueue(make_span(random_trace_id(), {}, "x"));
  ASSERT_TRUE(exporter.flush(10s));
  EXPECT_EQ(exporter.dropped_total(), 5u);
  EXPECT_EQ(exporter.failed_exports_total(), 1u);
  EXPECT_EQ(exporter.retries_total(), 2u);
  std::lock_guard lock(mu);
  EXPECT_NE(last_error.find("connection error"), std::string::npos) << last_error;
}

TEST(OtlpExporter, FullQueueDropsWithoutBlocking) {
  TestCollector collector;
  collector.block();
  auto cfg = test_config(collector);
  cfg.max_queue_size = 4;
  cfg.max_export_batch_size = 2;
  OtlpExporter exporter(cfg);
  const TraceId trace = random_trace_id();
  ASSERT_TRUE(exporter.enqueue(make_span(trace, {}, "a")));
  ASSERT_TRUE(exporter.enqueue(make_span(trace, {}, "b")));  // a full batch: export starts
  ASSERT_TRUE(eventually([&] { return collector.requests() == 1; }));  // ... and hangs
  ASSERT_TRUE(exporter.enqueue(make_span(trace, {}, "c")));
  ASSERT_TRUE(exporter.enqueue(make_span(trace, {}, "d")));
  EXPECT_EQ(exporter.queue_size(), 4u);
  const auto waited_before = sluice::testing::this_thread_run_queue_wait();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(exporter.enqueue(make_span(trace, {}, "e")));
  EXPECT_FALSE(exporter.enqueue(make_span(trace, {}, "f")));
  // Blocking would wait for the collector (released below); a busy machine's wait for a CPU
  // is not blocking.
  EXPECT_LT(std::chrono::steady_clock::now() - t0 -
                (sluice::testing::this_thread_run_queue_wait() - waited_before),
            100ms);
  EXPECT_EQ(exporter.dropped_total(), 2u);
  collector.release();
  ASSERT_TRUE(exporter.flush(5s));
  EXPECT_EQ(exporter.exported_total(), 4u);
  EXPECT_EQ(collector.spans().size(), 4u);
}

TEST(OtlpExporter, ShutdownExportsWhatIsQueuedThenRefuses) {
  TestCollector collector;
  OtlpExporter exporter(test_config(collector));
  for (int i = 0; i < 3; ++i)
    exporter.enqueue(make_span(random_trace_id(), {}, "late"));
  exporter.shutdown(5s);
  EXPECT_EQ(collector.spans().size(), 3u);
  EXPECT_FALSE(exporter.enqueue(make_span(random_trace_id(), {}, "after")));
  EXPECT_EQ(exporter.dropped_total(), 1u);
  EXPECT_TRUE(exporter.flush(1s));
  exporter.shutdown();  // idempotent
}

TEST(OtlpExporter, ShutdownDoesNotWaitForLongBackoff) {
  TestCollector collector;
  collector.fail(100, 503);
  auto cfg = test_config(collector);
  cfg.initial_backoff = 30s;
  cfg.max_backoff = 30s;
  OtlpExporter exporter(cfg);
  exporter.enqueue(make_span(random_trace_id(), {}, "x"));
  EXPECT_FALSE(exporter.flush(50ms));  // triggers the export; its retry then waits 30 s
  ASSERT_TRUE(eventually([&] { return collector.requests() >= 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  exporter.shutdown(200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(exporter.dropped_total(), 1u);
}

TEST(OtlpConfig, FromEnv) {
  ::setenv("OTEL_SERVICE_NAME", "checkout", 1);
  ::setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
  ::setenv("OTEL_RESOURCE_ATTRIBUTES",
           "service.name=ignored, deployment.environment=prod,team=a%20b%2Cc ,,", 1);
  ::setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
  ::setenv("OTEL_BSP_SCHEDULE_DELAY", "250", 1);
  OtlpConfig base;
  base.traces_endpoint = "http://from-yaml:4318/v1/traces";
  base.resource_attributes = {{"team", "old"}};
  std::vector<std::string> warnings;
  OtlpConfig cfg = from_env(base, &warnings);
  EXPECT_EQ(cfg.service_name, "checkout");
  EXPECT_EQ(cfg.traces_url(), "http://collector:4318/v1/traces");
  ASSERT_EQ(cfg.resource_attributes.size(), 2u);
  EXPECT_EQ(cfg.resource_attributes[0].first, "deployment.environment");
  EXPECT_EQ(cfg.resource_attributes[0].second, "prod");
  EXPECT_EQ(cfg.resource_attributes[1].first, "team");
  EXPECT_EQ(cfg.resource_attributes[1].second, "a b,c");
  EXPECT_EQ(cfg.max_queue_size, 100u);
  EXPECT_EQ(cfg.max_export_batch_size, 100u);  // clamped to the queue size, with a warning
  EXPECT_EQ(cfg.schedule_delay, 250ms);
  EXPECT_EQ(warnings.size(), 1u);
  ::unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
  ::unsetenv("OTEL_BSP_SCHEDULE_DELAY");

  ::setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://x.example/otlp/traces", 1);
  ::unsetenv("OTEL_SERVICE_NAME");
  ::setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from%2Dattrs", 1);
  cfg = from_env(OtlpConfig{});
  EXPECT_EQ(cfg.traces_url(), "https://x.example/otlp/traces");
  EXPECT_EQ(cfg.service_name, "from-attrs");

  ::setenv("OTEL_RESOURCE_ATTRIBUTES", "good=1,bad", 1);
  warnings.clear();
  cfg = from_env(OtlpConfig{}, &warnings);
  EXPECT_TRUE(cfg.resource_attributes.empty());
  EXPECT_EQ(warnings.size(), 1u);
  ::setenv("OTEL_RESOURCE_ATTRIBUTES", "k=%zz", 1);
  EXPECT_TRUE(from_env(OtlpConfig{}).resource_attributes.empty());

  for (const char* v :
       {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_RESOURCE_ATTRIBUTES", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_SCHEDULE_DELAY"}) {
    ::unsetenv(v);
  }
  EXPECT_EQ(from_env(OtlpConfig{}).traces_url(), "http://localhost:4318/v1/traces");
}

TEST(OtlpJson, EncodesAnEmptyBatchAndSpecialDoubles) {
  OtlpConfig cfg;
  const std::string empty = encode_otlp_json(cfg, nullptr, 0);
  const json e = json::parse(empty);
  EXPECT_TRUE(e["resourceSpans"][0]["scopeSpans"][0]["spans"].empty());
  SpanData s = make_span(random_trace_id(), {}, "x");
  s.attributes = {{"inf", std::numeric_limits<double>::infinity()},
                  {"ninf", -std::numeric_limits<double>::infinity()},
                  {"small", 1e-300}};
  const json j = json::parse(encode_otlp_json(cfg, &s, 1));
  const auto& attrs = j["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"];
  EXPECT_EQ(attrs[0]["value"]["doubleValue"], "Infinity");
  EXPECT_EQ(attrs[1]["value"]["doubleValue"], "-Infinity");
  EXPECT_EQ(attrs[2]["value"]["doubleValue"].get<double>(), 1e-300);
}

}  // namespace
}  // namespace sluice::observe
