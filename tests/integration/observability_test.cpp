// Observability against the real binary: /metrics passes `promtool check metrics` and counts
// requests; spans reach a test OTLP collector with the caller's trace and sluice's span
// forwarded upstream; curl's repeated traceparent/tracestate fields follow Trace Context
// Level 2; hostile requests still give one JSON access-log line each; SIGUSR1
// reopens a renamed log, and with two workers no line is lost or doubled across it;
// /stats/middlewares answers with its documented shape; the per-worker accept counter shows
// worker_cpu_affinity keeping each CPU's connections on its worker.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sched.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "support/otlp_collector.hpp"
#include "support/raw_client.hpp"
#include "support/served_upstream.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::string scrape(const SluiceProcess& gw) {
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

// The value of one sample line "name{labels} value", or -1.
double sample(const std::string& metrics, const std::string& series) {
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// Runs curl (a real client that sends repeated fields as given) and returns what it printed.
std::string curl(const std::string& args) {
  FILE* p = ::popen(("curl -sS --max-time 10 " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return {};
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  ::pclose(p);
  return out;
}

// Pipes `text` into `promtool check metrics`; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text, const TempDir& dir) {
  const std::string in = dir.write("metrics.txt", text);
  const std::string out = dir.file("promtool.out");
  const int rc = std::system(("promtool check metrics < " + in + " > " + out + " 2>&1").c_str());
  std::ifstream f(out);
  std::stringstream s;
  s << f.rdbuf();
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, s.str()};
}

TEST(Observability, MetricsPassPromtoolAndCountRequests) {
  SluiceProcess gw(R"(
routes:
  - name: hello
    match: { prefix: /hello }
    middlewares: [ { type: request_id } ]
    handler: { type: respond, status: 200, body: "hi\n" }
  - name: broken
    match: { prefix: /broken }
    handler: { type: respond, status: 503, body: "down\n" }
)");
  httplib::Client c("127.0.0.1", gw.port());
  for (int i = 0; i < 7; ++i)
    ASSERT_TRUE(c.Get("/hello"));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(c.Post("/broken", "12345", "text/plain"));
  ASSERT_TRUE(c.Get("/nowhere"));  // 404 by the router: no chain, not counted

  const std::string m = scrape(gw);
  TempDir dir;
  auto [rc, out] = promtool_check(m, dir);
  EXPECT_EQ(rc, 0) << out << "\n" << m;

  EXPECT_EQ(sample(m, R"(http_requests_total{route="hello",method="GET",code="200"})"), 7);
  EXPECT_EQ(sample(m, R"(http_requests_total{route="broken",method="POST",code="503"})"), 3);
  EXPECT_EQ(sample(m, R"(http_request_duration_seconds_count{route="hello",method="GET"})"), 7);
  EXPECT_EQ(sample(m, R"(http_request_size_bytes_sum{route="broken",method="POST"})"), 15);
  EXPECT_EQ(sample(m, R"(http_response_size_bytes_sum{route="hello",method="GET"})"), 21);
  EXPECT_EQ(
      sample(m, R"(http_middleware_duration_seconds_count{middleware="request_id",route="hello"})"),
      7);
  EXPECT_EQ(sample(m, "http_requests_in_flight"), 0);
  EXPECT_GT(sample(m, "process_resident_memory_bytes"), 0);
  EXPECT_GT(sample(m, "process_open_fds"), 0);
  EXPECT_GT(sample(m, "process_start_time_seconds"), 1.6e9);
  EXPECT_EQ(m.find("route=\"nowhere\""), std::string::npos);
}

// The seed's http_connections gauge and the per-listener accept/close counters.
TEST(Observability, ConnectionsGaugeAndCountersPerListener) {
  SluiceProcess gw("workers: 2\nroutes: [ { handler: { type: echo } } ]\n");
  const std::string at = "address=\"127.0.0.1:" + std::to_string(gw.port()) + "\"";
  const std::string open = "http_connections{listener=\"public\"," + at + "}";
  const std::string accepted = "http_connections_accepted_total{listener=\"public\"," + at + "}";
  const std::string closed = "http_connections_closed_total{listener=\"public\"," + at + "}";
  {
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(std::make_unique<RawClient>(gw.port()));
      ASSERT_TRUE(clients.back()->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      ASSERT_EQ(status_codes(clients.back()->read_responses(1)), std::vector<int>{200});
    }
    const std::string m = scrape(gw);
    EXPECT_EQ(sample(m, open), 3) << m;
    EXPECT_EQ(sample(m, accepted), 3) << m;
    EXPECT_EQ(sample(m, closed), 0) << m;
    TempDir dir;
    auto [rc, out] = promtool_check(m, dir);
    EXPECT_EQ(rc, 0) << out;
  }
  EXPECT_TRUE(eventually([&] { return sample(scrape(gw), open) == 0; })) << scrape(gw);
  const std::string m = scrape(gw);
  EXPECT_EQ(sample(m, closed), 3) << m;
  EXPECT_NE(m.find("http_connections{listener=\"admin\""), std::string::npos) << m;
}

// The CPUs this process may run on (the gateway inherits them), ascending.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  return out;
}

// Opens `n` connections from a thread pinned to `cpu`, one answered request on each: the
// kernel handles each SYN on loopback on the connecting CPU, where the listener is chosen.
void connect_from_cpu(int cpu, int port, int n) {
  std::thread t([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < n; ++i) {
      clients.push_back(std::make_unique<RawClient>(port));
      ASSERT_TRUE(clients.back()->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      ASSERT_EQ(status_codes(clients.back()->read_responses(1)), std::vector<int>{200});
    }
  });
  t.join();
}

// The Cpus_allowed_list line of a /proc/.../status file ("0-1", "1"), or "".
std::string cpus_allowed_list(const std::string& status_path) {
  std::istringstream status(read_file(status_path));
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Cpus_allowed_list:"))
      return line.substr(line.find_first_not_of(" \t", sizeof("Cpus_allowed_list:") - 1));
  }
  return {};
}

// Cpus_allowed_list of the gateway's thread named `name` ("sluice-w-1"), or "" if none.
std::string thread_cpus(pid_t pid, const std::string& name) {
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    if (read_file((task.path() / "comm").string()) == name + "\n")
      return cpus_allowed_list((task.path() / "status").string());
  }
  return {};
}

// worker_cpu_affinity: auto pins worker i to the i-th allowed CPU, and every connection made
// from a client on that CPU is accepted by that worker (sluice_worker_connections_accepted_total).
// Without it, the SO_REUSEPORT hash spreads one CPU's connections over both workers. A reload
// cannot turn it off (restart required).
TEST(Observability, WorkerCpuAffinityKeepsEachCpusConnectionsOnItsWorker) {
  const auto cpus = allowed_cpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 allowed CPUs, has " << cpus.size();
  constexpr int kConnections = 24;
  for (const bool pinned : {true, false}) {
    SCOPED_TRACE(pinned ? "worker_cpu_affinity: auto" : "not pinned");
    SluiceProcess gw(std::string("workers: 2\n") + (pinned ? "worker_cpu_affinity: auto\n" : "") +
                     "routes: [ { handler: { type: respond, status: 200 } } ]\n");
    const std::string series =
        "sluice_worker_connections_accepted_total{listener=\"public\","
        "address=\"127.0.0.1:" +
        std::to_string(gw.port()) + "\",worker=\"";
    auto accepted = [&](int worker) {
      return sample(scrape(gw), series + std::to_string(worker) + "\"}");
    };
    // A worker names and pins its thread as it starts, which may be after the port file.
    const std::string all = cpus_allowed_list("/proc/self/status");  // the gateway inherits it
    for (int w : {0, 1}) {
      const std::string name = "sluice-w-" + std::to_string(w);
      const std::string want = pinned ? std::to_string(cpus[static_cast<std::size_t>(w)]) : all;
      EXPECT_TRUE(eventually([&] { return thread_cpus(gw.pid(), name) == want; }))
          << name << ": " << thread_cpus(gw.pid(), name) << ", want " << want;
    }
    for (int k : {1, 0}) {
      const double before[2] = {accepted(0), accepted(1)};
      connect_from_cpu(cpus[static_cast<std::size_t>(k)], gw.port(), kConnections);
      const double own = accepted(k) - before[k], other = accepted(1 - k) - before[1 - k];
      EXPECT_EQ(own + other, kConnections) << scrape(gw);
      if (pinned) {
        EXPECT_EQ(own, kConnections) << "client on CPU " << cpus[static_cast<std::size_t>(k)];
      } else {
        // The hash puts all 24 on one worker with probability 2^-23.
        EXPECT_GT(own, 0);
        EXPECT_GT(other, 0);
      }
    }
    if (!pinned) continue;
    // The listeners are made once: a reload that turns the setting off needs a restart and
    // leaves the workers pinned and the steering on.
    gw.rewrite_config("workers: 2\nroutes: [ { handler: { type: respond, status: 200 } } ]\n");
    httplib::Client admin("127.0.0.1", gw.admin_port());
    auto reload = admin.Post("/reload");
    ASSERT_TRUE(reload);
    EXPECT_NE(json::parse(reload->body)["restart_required"].dump().find("worker_cpu_affinity"),
              std::string::npos)
        << reload->body;
    EXPECT_EQ(thread_cpus(gw.pid(), "sluice-w-1"), std::to_string(cpus[1]));
    const double before = accepted(1);
    connect_from_cpu(cpus[1], gw.port(), kConnections);
    EXPECT_EQ(accepted(1) - before, kConnections) << "after the reload";
  }
}

TEST(Observability, SpansReachTheCollectorAndTraceparentIsForwarded) {
  OtlpCollector collector;
  SluiceProcess gw(R"(
tracing:
  service_name: gw-under-test
  endpoint: http://127.0.0.1:)" +
                   std::to_string(collector.port()) + R"(
  sampler: parentbased_always_on
  resource_attributes: { deployment.environment: test }
  batch: { schedule_delay_ms: 50 }
routes:
  - name: echo
    match: { prefix: /echo }
    middlewares: [ { type: request_id } ]
    handler: { type: echo }
)");
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string parent = "00f067aa0ba902b7";
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Get("/echo/a", {{"traceparent", "00-" + trace + "-" + parent + "-01"},
                             {"tracestate", "vendor=abc"},
                             {"User-Agent", "itest/1"}});
  ASSERT_TRUE(r);
  auto echoed = json::parse(r->body)["headers"];
  const std::string forwarded = echoed["traceparent"][0];
  std::smatch match;
  ASSERT_TRUE(std::regex_match(forwarded, match, std::regex("00-" + trace + "-([0-9a-f]{16})-01")))
      << forwarded;
  const std::string sluice_span = match[1];
  EXPECT_NE(sluice_span, parent);
  EXPECT_EQ(echoed["tracestate"][0], "vendor=abc");

  auto bad = c.Get("/echo/b", {{"traceparent", "00-zz-nonsense-01"}});  // never fails
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 200);

  ASSERT_TRUE(eventually([&] { return collector.spans().size() >= 2; })) << gw.log();
  json span;
  for (const auto& s : collector.spans())
    if (s["traceId"] == trace) span = s;
  ASSERT_FALSE(span.is_null());
  EXPECT_EQ(span["spanId"], sluice_span);
  EXPECT_EQ(span["parentSpanId"], parent);
  EXPECT_EQ(span["kind"], 2);
  EXPECT_EQ(span_attribute(span, "http.route")["stringValue"], "echo");
  EXPECT_EQ(span_attribute(span, "url.path")["stringValue"], "/echo/a");
  EXPECT_EQ(span_attribute(span, "http.response.status_code")["intValue"], "200");
  EXPECT_EQ(span_attribute(span, "client.address")["stringValue"], "127.0.0.1");
  EXPECT_EQ(span_attribute(span, "user_agent.original")["stringValue"], "itest/1");
  EXPECT_EQ(span_attribute(span, "server.address")["stringValue"], "127.0.0.1");
  bool named = false, env = false;
  const json resource = collector.resource();
  for (const auto& a : resource["attributes"]) {
    named |= a["key"] == "service.name" && a["value"]["stringValue"] == "gw-under-test";
    env |= a["key"] == "deployment.environment" && a["value"]["stringValue"] == "test";
  }
  EXPECT_TRUE(named && env) << resource;
  ASSERT_TRUE(
      eventually([&] { return sample(scrape(gw), "sluice_otlp_spans_exported_total") >= 2; }));
}

// Tail sampling through the binary, with a real upstream: at head ratio 0 an error and a slow
// request are kept (sluice.sampled_by says why), a fast 200 is not, and
// sluice_traces_sampled_total counts each decision.
TEST(Observability, TailSamplingKeepsErrorsAndSlowRequestsAtRatioZero) {
  httplib::Server upstream;
  upstream.Get("/ok", [](const httplib::Request&, httplib::Response& r) {
    r.set_content("ok", "text/plain");
  });
  upstream.Get("/slow", [](const httplib::Request&, httplib::Response& r) {
    std::this_thread::sleep_for(1200ms);
    r.set_content("slow", "text/plain");
  });
  upstream.Get("/broken", [](const httplib::Request&, httplib::Response& r) {
    r.status = 503;
    r.set_content("down", "text/plain");
  });
  ServedUpstream served(upstream);
  const int port = served.port();

  OtlpCollector collector;
  SluiceProcess gw(R"(
upstreams:
  backend: { endpoints: ["127.0.0.1:)" +
                   std::to_string(port) + R"("] }
tracing:
  endpoint: http://127.0.0.1:)" +
                   std::to_string(collector.port()) + R"(
  sampler: parentbased_traceidratio
  ratio: 0
  tail_sampling: { errors: [5xx], slow_ms: 800 }  # margin for a loaded machine
  batch: { schedule_delay_ms: 50 }
routes:
  - name: api
    match: { prefix: / }
    handler: { type: proxy, cluster: backend }
)");
  httplib::Client c("127.0.0.1", gw.port());
  for (const char* path : {"/ok", "/broken", "/slow", "/ok"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
  }
  const std::string metrics_seen = [&] {
    std::string m;
    eventually([&] {
      m = scrape(gw);
      return sample(m, "sluice_traces_sampled_total{reason=\"dropped\"}") >= 2;
    });
    return m;
  }();
  EXPECT_EQ(sample(metrics_seen, "sluice_traces_sampled_total{reason=\"error\"}"), 1);
  EXPECT_EQ(sample(metrics_seen, "sluice_traces_sampled_total{reason=\"slow\"}"), 1);
  EXPECT_EQ(sample(metrics_seen, "sluice_traces_sampled_total{reason=\"dropped\"}"), 2);
  EXPECT_EQ(sample(metrics_seen, "sluice_traces_sampled_total{reason=\"ratio\"}"), 0);
  EXPECT_EQ(sample(metrics_seen, "sluice_traces_pending"), 0);
  ASSERT_TRUE(eventually([&] { return collector.spans().size() >= 2; })) << gw.log();
  std::this_thread::sleep_for(200ms);  // a third span (a wrongly kept /ok) would arrive by now
  std::multiset<std::string> kept;
  for (const auto& s : collector.spans()) {
    kept.insert(span_attribute(s, "url.path")["stringValue"].get<std::string>() + " " +
                span_attribute(s, "sluice.sampled_by")["stringValue"].get<std::string>());
  }
  EXPECT_EQ(kept, (std::multiset<std::string>{"/broken error", "/slow slow"}));
}

// Trace Context Level 2 through the binary with curl: two traceparent fields are not a valid
// traceparent, so the request starts a new trace and drops its tracestate (§4.1.2); a single
// valid traceparent is continued while tracestate keeps the header, drops the later duplicate
// key and the member whose key starts with '@' (§3.3.2.2.1, §3.3.3), across two fields.
TEST(Observability, CurlRepeatedTraceFieldsFollowTraceContextLevel2) {
  OtlpCollector collector;
  SluiceProcess gw(R"(
tracing:
  endpoint: http://127.0.0.1:)" +
                   std::to_string(collector.port()) + R"(
  sampler: parentbased_always_on
  batch: { schedule_delay_ms: 50 }
routes:
  - name: echo
    match: { prefix: /echo }
    handler: { type: echo }
)");
  const std::string url = "http://127.0.0.1:" + std::to_string(gw.port());
  const std::string first = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string second = "12345678901234567890123456789012";
  const std::string parent = "00f067aa0ba902b7";

  const std::string twice = curl("-H 'traceparent: 00-" + first + "-" + parent + "-01' " +
                                 "-H 'traceparent: 00-" + second + "-" + parent + "-01' " +
                                 "-H 'tracestate: congo=t61rcWkgMzE' " + url + "/echo/twice");
  const json echoed = json::parse(twice, nullptr, false)["headers"];
  ASSERT_TRUE(echoed.is_object()) << twice << gw.log();
  ASSERT_EQ(echoed["traceparent"].size(), 1u) << echoed;
  const std::string restarted = echoed["traceparent"][0];
  std::smatch m;
  ASSERT_TRUE(std::regex_match(restarted, m, std::regex("00-([0-9a-f]{32})-([0-9a-f]{16})-03")))
      << restarted;
  const std::string new_trace = m[1];
  EXPECT_NE(new_trace, first);
  EXPECT_NE(new_trace, second);
  EXPECT_FALSE(echoed.contains("tracestate")) << echoed;

  const std::string state = curl(
      "-H 'traceparent: 00-" + first + "-" + parent + "-01' " +
      "-H 'tracestate: foo=1,foo=1' -H 'tracestate: foo@=1,@bad=2,bar=2' " + url + "/echo/state");
  const json kept = json::parse(state, nullptr, false)["headers"];
  ASSERT_TRUE(kept.is_object()) << state;
  ASSERT_EQ(kept["traceparent"].size(), 1u);
  EXPECT_TRUE(std::string(kept["traceparent"][0]).starts_with("00-" + first + "-")) << kept;
  ASSERT_EQ(kept["tracestate"].size(), 1u);
  EXPECT_EQ(kept["tracestate"][0], "foo=1,foo@=1,bar=2");

  ASSERT_TRUE(eventually([&] { return collector.spans().size() >= 2; })) << gw.log();
  json restarted_span, continued_span;
  for (const auto& s : collector.spans()) {
    if (s["traceId"] == new_trace) restarted_span = s;
    if (s["traceId"] == first) continued_span = s;
  }
  ASSERT_FALSE(restarted_span.is_null());
  EXPECT_TRUE(!restarted_span.contains("parentSpanId") || restarted_span["parentSpanId"] == "");
  ASSERT_FALSE(continued_span.is_null());
  EXPECT_EQ(continued_span["parentSpanId"], parent);
  EXPECT_EQ(continued_span["traceState"], "foo=1,foo@=1,bar=2");
}

// GETs / on a fresh connection each, from `clients` threads, `each` apiece: the kernel spreads
// the connections over the workers. Counts the 200s and collects the worker threads that
// answered (a generated request id starts with its thread's prefix). join() waits for them.
class SpreadRequests {
 public:
  SpreadRequests(const SluiceProcess& gw, int clients, int each) {
    for (int t = 0; t < clients; ++t) {
      threads_.emplace_back([this, &gw, each] {
        for (int i = 0; i < each; ++i) {
          httplib::Client c("127.0.0.1", gw.port());
          auto r = c.Get("/");
          if (!r || r->status != 200) continue;
          ++ok;
          std::lock_guard lock(mutex_);
          workers.insert(r->get_header_value("X-Request-Id").substr(0, 16));
        }
      });
    }
  }
  ~SpreadRequests() { join(); }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  std::atomic<int> ok{0};
  std::set<std::string> workers;  // read after join()

 private:
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

TEST(Observability, HostileRequestsEachGiveOneJsonLine) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw("access_log: { path: " + log + " }\n" + R"(
routes:
  - name: all
    match: { prefix: / }
    middlewares: [ { type: request_id } ]
    handler: { type: respond, status: 200, body: "ok\n" }
)");
  const std::vector<std::string> targets = {"/q\"uote",       "/back\\slash",  "/ctl%00%0d%0a",
                                            "/utf8-\xff\xfe", "/over\xc0\xaf", "/\x7f"};
  const std::vector<std::string> agents = {"a\"b",      "c\\d",      "e\x01\x02",    "bad\xff\xc3",
                                           "tab\there", "{\"x\":1}", "\xed\xa0\x80", "ok \xc3\xa9"};
  int answered = 0;
  auto send = [&](const std::string& target, const std::string& agent) {
    RawClient client(gw.port());
    client.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nUser-Agent: " + agent +
                "\r\nX-Evil: \"\\\r\nConnection: close\r\n\r\n");
    auto codes = status_codes(client.read_responses(1));
    if (!codes.empty() && codes[0] == 200) ++answered;
  };
  for (const auto& t : targets)
    send(t, "plain");
  for (const auto& a : agents)
    send("/ua", a);
  // A CR/LF injection attempt ends the header early: what follows is never a log field.
  send("/crlf", "evil\r\nX-Injected: {\"status_code\":1}");
  ASSERT_GT(answered, 8);

  ASSERT_TRUE(eventually([&] { return static_cast<int>(read_lines(log).size()) >= answered; }));
  auto lines = read_lines(log);
  EXPECT_EQ(static_cast<int>(lines.size()), answered);
  for (const auto& line : lines) {
    json j;
    ASSERT_NO_THROW(j = json::parse(line)) << line;
    EXPECT_EQ(j["route"], "all");
    EXPECT_EQ(j["status_code"], 200);
    EXPECT_EQ(j["request_id"].get<std::string>().size(), 32u);
    for (char c : line)
      ASSERT_GE(static_cast<unsigned char>(c), 0x20) << line;
  }
}

TEST(Observability, Sigusr1ReopensARenamedAccessLog) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw("access_log: { path: " + log + " }\n" +
                   "routes: [{ name: r, handler: { type: respond, status: 200 } }]\n");
  httplib::Client c("127.0.0.1", gw.port());
  ASSERT_TRUE(c.Get("/before"));
  ASSERT_TRUE(eventually([&] { return read_lines(log).size() == 1; }));
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_TRUE(c.Get("/renamed"));  // still the old file: it is open
  ASSERT_EQ(::kill(gw.pid(), SIGUSR1), 0);
  ASSERT_TRUE(
      eventually([&] { return sample(scrape(gw), "sluice_access_log_reopens_total") >= 1; }));
  ASSERT_TRUE(c.Get("/after"));
  ASSERT_TRUE(eventually([&] { return read_lines(log).size() == 1; }));
  EXPECT_EQ(json::parse(read_lines(log)[0])["path"], "/after");
  auto old = read_lines(log + ".1");
  ASSERT_EQ(old.size(), 2u);
  EXPECT_EQ(json::parse(old[1])["path"], "/renamed");
}

// Two workers, each queueing access-log lines in its own shard, and a logrotate-style rename +
// SIGUSR1 while requests arrive: every request gives exactly one whole JSON line, in the old
// file or the new one, none twice, none lost, and the counters agree.
TEST(Observability, AccessLogIsExactOverTwoWorkersAcrossAReopen) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw("workers: 2\naccess_log: { path: " + log + " }\n" +
                   "routes: [{ name: api, middlewares: [ { type: request_id } ],\n" +
                   "           handler: { type: respond, status: 200, body: ok } }]\n");
  constexpr int kClients = 8, kEach = 100;
  SpreadRequests clients(gw, kClients, kEach);
  // Rotate once some lines are in the file, while the clients go on.
  ASSERT_TRUE(eventually([&] { return read_lines(log).size() >= 100; }));
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(::kill(gw.pid(), SIGUSR1), 0);
  clients.join();
  ASSERT_EQ(clients.ok.load(), kClients * kEach);
  EXPECT_EQ(clients.workers.size(), 2u)
      << "both workers must have answered, or the test shows nothing";
  ASSERT_TRUE(eventually([&] {
    return sample(scrape(gw), "sluice_access_log_lines_written_total") >= kClients * kEach;
  }));
  const std::string m = scrape(gw);
  EXPECT_EQ(sample(m, "sluice_access_log_lines_written_total"), kClients * kEach);
  EXPECT_EQ(sample(m, "sluice_access_log_lines_dropped_total"), 0);
  EXPECT_EQ(sample(m, "sluice_access_log_reopens_total"), 1);

  const auto old_lines = read_lines(log + ".1");
  const auto new_lines = read_lines(log);
  EXPECT_GE(old_lines.size(), 100u);
  EXPECT_GT(new_lines.size(), 0u) << "the reopen came after the last request";
  std::set<std::string> ids;
  for (const auto* lines : {&old_lines, &new_lines}) {
    for (const auto& line : *lines) {
      json j;
      ASSERT_NO_THROW(j = json::parse(line)) << line;
      EXPECT_EQ(j["route"], "api");
      EXPECT_TRUE(ids.insert(j["request_id"].get<std::string>()).second) << "twice: " << line;
    }
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kClients * kEach));
}

TEST(Observability, StatsMiddlewaresShape) {
  SluiceProcess gw(R"(
routes:
  - name: api
    match: { prefix: /api }
    middlewares: [ { type: request_id }, { type: headers, response: { set: { X-A: b } } } ]
    handler: { type: respond, status: 200 }
  - name: idle
    match: { prefix: /idle }
    middlewares: [ { type: request_id } ]
    handler: { type: respond, status: 200 }
)");
  httplib::Client c("127.0.0.1", gw.port());
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(c.Get("/api/x"));
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/stats/middlewares");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  auto body = json::parse(r->body);
  ASSERT_TRUE(body["middlewares"].is_array());
  ASSERT_EQ(body["middlewares"].size(), 3u);
  double previous_cost = 1e300;
  for (const auto& m : body["middlewares"]) {
    for (const char* key : {"route", "middleware", "count", "p50_us", "p99_us", "cost_ms"})
      EXPECT_TRUE(m.contains(key)) << m;
    EXPECT_LE(m["cost_ms"].get<double>(), previous_cost) << "sorted by cost";
    previous_cost = m["cost_ms"].get<double>();
    if (m["route"] == "api") {
      EXPECT_EQ(m["count"], 20);
      EXPECT_GT(m["p99_us"].get<double>(), 0);
      EXPECT_GE(m["p99_us"].get<double>(), m["p50_us"].get<double>());
    } else {
      EXPECT_EQ(m["count"], 0);
    }
  }
  EXPECT_EQ(body["middlewares"].back()["route"], "idle");
  auto post = admin.Post("/stats/middlewares", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
}

// The rate limiter's decisions are counted in per-worker shards and summed at scrape
// (middleware/rate_limit/rate_limit_stats.hpp): with two workers counting at once, /metrics
// still has every request exactly once.
TEST(Observability, RateLimitDecisionsAreExactOverTwoWorkers) {
  SluiceProcess gw(R"(workers: 2
routes:
  - name: api
    middlewares:
      - type: request_id
      - { type: rate_limit, name: rl, headers: false,
          limits: [ { name: per_ip, key: client_ip, rate: 1000000, burst: 1000000 } ] }
    handler: { type: respond, status: 200, body: "ok" }
)");
  constexpr int kClients = 8, kEach = 50;
  SpreadRequests clients(gw, kClients, kEach);
  clients.join();
  ASSERT_EQ(clients.ok.load(), kClients * kEach);
  EXPECT_EQ(clients.workers.size(), 2u)
      << "both workers must have answered, or the test shows nothing";
  const std::string m = scrape(gw);
  EXPECT_EQ(
      sample(
          m,
          R"(sluice_rate_limit_decisions_total{limiter="rl/per_ip",result="allowed",route="api"})"),
      kClients * kEach)
      << m;
  EXPECT_EQ(
      sample(
          m,
          R"(sluice_rate_limit_decisions_total{limiter="rl/per_ip",result="denied",route="api"})"),
      0);
  TempDir dir;
  auto [rc, out] = promtool_check(m, dir);
  EXPECT_EQ(rc, 0) << out;
}

// rate_limit, concurrency_limit and fallback series carry the route, as the other middleware
// stats do: one instance name on two routes gives two series.
TEST(Observability, LimiterAndFallbackSeriesCarryTheRoute) {
  const std::string route = R"(
    middlewares:
      - type: fallback
        name: fb
        fallbacks:
          - { name: sorry, kind: static, when: { status: [5xx] }, status: 200, body: "sorry" }
      - { type: concurrency_limit, name: cl, max_in_flight: 10 }
      - { type: rate_limit, name: rl, limits: [ { name: per_ip, key: client_ip, rate: 0.01,
                                                  burst: 2 } ] }
    handler: { type: respond, status: 503, body: "down\n" }
)";
  SluiceProcess gw("routes:\n  - name: a\n    match: { prefix: /a }" + route +
                   "  - name: b\n    match: { prefix: /b }" + route);
  httplib::Client c("127.0.0.1", gw.port());
  for (int expected : {200, 200, 429}) {
    auto r = c.Get("/a");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, expected) << r->body;
  }
  auto b = c.Get("/b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, 200) << b->body;

  const std::string m = scrape(gw);
  EXPECT_EQ(
      sample(
          m,
          R"(sluice_rate_limit_decisions_total{limiter="rl/per_ip",result="allowed",route="a"})"),
      2)
      << m;
  EXPECT_EQ(
      sample(m,
             R"(sluice_rate_limit_decisions_total{limiter="rl/per_ip",result="denied",route="a"})"),
      1);
  EXPECT_EQ(
      sample(
          m,
          R"(sluice_rate_limit_decisions_total{limiter="rl/per_ip",result="allowed",route="b"})"),
      1);
  EXPECT_EQ(
      sample(m,
             R"(sluice_rate_limit_decisions_total{limiter="rl/per_ip",result="denied",route="b"})"),
      0);
  EXPECT_EQ(sample(m, R"(sluice_fallback_total{fallback="sorry",result="served",route="a"})"), 2);
  EXPECT_EQ(sample(m, R"(sluice_fallback_total{fallback="sorry",result="served",route="b"})"), 1);
  EXPECT_EQ(sample(m, R"(sluice_concurrency_limit_in_flight{limiter="cl",route="a"})"), 0);
  EXPECT_EQ(sample(m, R"(sluice_concurrency_limit_in_flight{limiter="cl",route="b"})"), 0);
  EXPECT_EQ(
      sample(m, R"(sluice_concurrency_limit_rejected_total{limiter="cl",reason="full",route="b"})"),
      0);
  // No series without the route is left over.
  EXPECT_EQ(m.find(R"(sluice_rate_limit_decisions_total{limiter="rl/per_ip",result="allowed"})"),
            std::string::npos);
  TempDir dir;
  auto [rc, out] = promtool_check(m, dir);
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace sluice::testing
