// The `fault` middleware in the real binary: each fault kind, header-driven faults refused
// unless enabled (and only from listed clients), runtime switches through the admin API,
// a delay that does not block other requests on the same (single) worker, and an upstream
// made unavailable driving the circuit breaker open while a fallback answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "support/raw_client.hpp"
#include "support/served_upstream.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

const char* kFaults = R"(
workers: 1
routes:
  - name: api
    match: { prefix: /api }
    middlewares:
      - type: fault
        seed: 42
        faults:
          - { name: slow, match: { prefix: /api/slow }, delay: { fixed_ms: 500 } }
          - { name: boom, match: { prefix: /api/boom }, abort: { status: 503 } }
          - name: teapot
            match: { prefix: /api/teapot, methods: [GET], headers: { x-brew: "yes" } }
            abort: { status: 418, body: "short and stout\n", headers: { X-Fault: teapot } }
          - { name: crash, match: { prefix: /api/crash }, abort: { reset: true } }
          - { name: trickle, match: { prefix: /api/big }, throttle: { bytes_per_second: 20000 } }
          - { name: flaky, enabled: false, percentage: 50, match: { prefix: /api/flaky },
              abort: { status: 500 } }
    handler: { type: respond, status: 200, body: "ok\n" }
  - name: big
    match: { prefix: /big }
    middlewares:
      - type: fault
        name: fault-big
        seed: 42
        faults: [ { name: trickle-big, throttle: { bytes_per_second: 20000 } } ]
    handler: { type: echo }
)";

// Sends one request on a fresh connection; returns what came back and how the read ended.
struct RawOutcome {
  std::string bytes;
  int error = 0;  // errno of the failing recv, 0 for an orderly close
};
RawOutcome raw_request(int port, const std::string& request) {
  RawOutcome out;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    out.error = errno;
    return out;
  }
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.bytes.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    out.error = n < 0 ? errno : 0;
    break;
  }
  ::close(fd);
  return out;
}

TEST(Chaos, EachFaultKind) {
  SluiceProcess gw(kFaults);
  httplib::Client c("127.0.0.1", gw.port());

  auto boom = c.Get("/api/boom");
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 503);
  EXPECT_EQ(json::parse(boom->body)["error"], "fault_abort");

  auto teapot = c.Get("/api/teapot", {{"x-brew", "yes"}});
  ASSERT_TRUE(teapot);
  EXPECT_EQ(teapot->status, 418);
  EXPECT_EQ(teapot->body, "short and stout\n");
  EXPECT_EQ(teapot->get_header_value("X-Fault"), "teapot");
  EXPECT_EQ(c.Get("/api/teapot")->status, 200) << "header match";
  EXPECT_EQ(c.Post("/api/teapot", "", "text/plain")->status, 200) << "method match";

  auto t0 = Clock::now();
  auto slow = c.Get("/api/slow");
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 200);
  EXPECT_GE(ms_since(t0), 495);

  // 10 000 bytes at 20 000 B/s: the response is held 500 ms.
  t0 = Clock::now();
  auto big = c.Post("/big", std::string(10'000, 'b'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 200);
  EXPECT_GE(ms_since(t0), 495);

  auto reset = raw_request(gw.port(), "GET /api/crash HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(reset.bytes, "") << "no response is written";
  EXPECT_EQ(reset.error, ECONNRESET) << "the connection is reset, not closed";
  EXPECT_EQ(c.Get("/api/ok")->status, 200) << "the server lives on";
}

TEST(Chaos, HeaderFaultsRefusedUnlessEnabled) {
  const char* disabled = R"(
routes:
  - name: r
    middlewares: [ { type: fault, seed: 1, faults: [ { name: x, enabled: false, abort: { status: 500 } } ] } ]
    handler: { type: echo }
)";
  SluiceProcess off(disabled);
  httplib::Client c_off("127.0.0.1", off.port());
  auto t0 = Clock::now();
  auto r =
      c_off.Get("/", {{"x-sluice-fault-abort-status", "503"}, {"x-sluice-fault-delay-ms", "800"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(ms_since(t0), 400);

  const char* outsiders_only = R"(
routes:
  - name: r
    middlewares: [ { type: fault, seed: 1, headers: { enabled: true, allowed_clients: [10.0.0.0/8] } } ]
    handler: { type: echo }
)";
  SluiceProcess others(outsiders_only);
  httplib::Client c_others("127.0.0.1", others.port());
  r = c_others.Get("/", {{"x-sluice-fault-abort-status", "503"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << "loopback is not in allowed_clients";
  EXPECT_EQ(json::parse(r->body)["headers"].dump().find("x-sluice-fault"), std::string::npos)
      << "the fault headers do not travel on";

  const char* enabled = R"(
routes:
  - name: r
    middlewares: [ { type: fault, seed: 1, headers: { enabled: true, allowed_clients: [127.0.0.1/32] } } ]
    handler: { type: echo }
)";
  SluiceProcess on(enabled);
  httplib::Client c_on("127.0.0.1", on.port());
  r = c_on.Get("/", {{"x-sluice-fault-abort-status", "503"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  t0 = Clock::now();
  r = c_on.Get("/", {{"x-sluice-fault-delay-ms", "300"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_GE(ms_since(t0), 295);
  int hits = 0;
  for (int i = 0; i < 100; ++i) {
    hits += c_on.Get("/", {{"x-sluice-fault-abort-status", "500"},
                           {"x-sluice-fault-abort-percentage", "20"}})
                ->status == 500;
  }
  EXPECT_GT(hits, 5);
  EXPECT_LT(hits, 40);
}

// A name that is not UTF-8 in an admin path gets a JSON answer with U+FFFD in its place, not
// a thrown serializer exception (a 500 or a dropped connection).
TEST(Chaos, AdminAnswersInvalidUtf8WithValidJson) {
  SluiceProcess gw(kFaults);
  for (const std::string& request :
       {std::string("GET /faults/bad\xff\xfe HTTP/1.1\r\nHost: a\r\n\r\n"),
        std::string("POST /faults/bad\xc0\xaf/enable HTTP/1.1\r\nHost: a\r\n"
                    "Content-Length: 0\r\n\r\n")}) {
    RawClient admin(gw.admin_port());
    ASSERT_TRUE(admin.send(request));
    const std::string answer = admin.read_responses(1);
    ASSERT_EQ(status_codes(answer), std::vector<int>{404}) << answer;
    const std::string body = answer.substr(answer.find("\r\n\r\n") + 4);
    json parsed;
    ASSERT_NO_THROW(parsed = json::parse(body)) << body;
    EXPECT_EQ(parsed["error"], "not_found");
    EXPECT_NE(parsed["message"].get<std::string>().find("bad\xEF\xBF\xBD\xEF\xBF\xBD"),
              std::string::npos)
        << body;
  }
}

TEST(Chaos, RuntimeTogglesThroughAdmin) {
  SluiceProcess gw(kFaults);
  httplib::Client c("127.0.0.1", gw.port());
  httplib::Client admin("127.0.0.1", gw.admin_port());

  auto list = admin.Get("/faults");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  auto faults = json::parse(list->body)["faults"];
  auto find = [](const json& all, const std::string& name) {
    for (const auto& f : all)
      if (f["name"] == name) return f;
    return json();
  };
  EXPECT_EQ(find(faults, "flaky")["enabled"], false);
  EXPECT_EQ(find(faults, "flaky")["percentage"], 50);
  EXPECT_EQ(find(faults, "slow")["kind"], "delay");

  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(c.Get("/api/flaky")->status, 200);
  auto on = admin.Post("/faults/flaky/enable", "", "text/plain");
  ASSERT_TRUE(on);
  EXPECT_EQ(on->status, 200);
  EXPECT_EQ(json::parse(on->body)["enabled"], true);
  int errors = 0;
  for (int i = 0; i < 100; ++i)
    errors += c.Get("/api/flaky")->status == 500;
  EXPECT_GT(errors, 30);
  EXPECT_LT(errors, 70);

  auto pct = admin.Post("/faults/flaky/percentage?value=100", "", "text/plain");
  ASSERT_TRUE(pct);
  EXPECT_EQ(json::parse(pct->body)["percentage"], 100);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(c.Get("/api/flaky")->status, 500);
  pct = admin.Post("/faults/flaky/percentage", R"({"value": 0})", "application/json");
  ASSERT_TRUE(pct);
  EXPECT_EQ(json::parse(pct->body)["percentage"], 0);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(c.Get("/api/flaky")->status, 200);
  EXPECT_EQ(admin.Post("/faults/flaky/percentage?value=150", "", "text/plain")->status, 400);
  EXPECT_EQ(admin.Post("/faults/nope/enable", "", "text/plain")->status, 404);
  EXPECT_EQ(admin.Post("/faults/boom/disable", "", "text/plain")->status, 200);
  EXPECT_EQ(c.Get("/api/boom")->status, 200);

  auto one = json::parse(admin.Get("/faults/flaky")->body);
  EXPECT_EQ(one["injected"], errors + 10);

  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sluice_fault_injected_total{fault=\"flaky\",kind=\"abort\"} " +
                               std::to_string(errors + 10)),
            std::string::npos)
      << metrics->body.substr(0, 2000);
  EXPECT_NE(gw.log().find("fault flaky (abort): switched on by admin API"), std::string::npos);
  EXPECT_NE(gw.log().find("fault boom (abort): switched off by admin API"), std::string::npos);

  // The switch survives a reload of an unchanged config.
  gw.rewrite_config(std::string(kFaults) + "\n# touched\n");
  auto reload = admin.Post("/reload", "", "text/plain");
  ASSERT_TRUE(reload);
  EXPECT_EQ(reload->status, 200);
  EXPECT_EQ(c.Get("/api/boom")->status, 200) << "still off after the reload";
}

// workers: 1 — while one request waits 500 ms on its injected delay, 20 others on the same
// worker complete quickly.
TEST(Chaos, DelayDoesNotBlockTheWorker) {
  SluiceProcess gw(kFaults);
  auto slow = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", gw.port());
    auto t0 = Clock::now();
    auto r = c.Get("/api/slow");
    return std::make_pair(r ? r->status : -1, ms_since(t0));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the slow one is in its delay
  httplib::Client c("127.0.0.1", gw.port());
  auto t0 = Clock::now();
  double worst = 0;
  for (int i = 0; i < 20; ++i) {
    auto t = Clock::now();
    auto r = c.Get("/api/fast");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    worst = std::max(worst, ms_since(t));
  }
  const double all = ms_since(t0);
  EXPECT_EQ(slow.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "the 20 finished while the delayed one still waited";
  auto [status, slow_ms] = slow.get();
  EXPECT_EQ(status, 200);
  EXPECT_GE(slow_ms, 495);
  EXPECT_LT(all, 400) << "20 requests on the same worker";
  EXPECT_LT(worst, 100);
}

// Needs the proxy, the circuit breaker and the fallback middleware; skipped (with the reason)
// on a build that lacks one of them.
TEST(Chaos, DependencyUnavailableOpensBreakerAndFallbackAnswers) {
  httplib::Server upstream;
  std::atomic<int> upstream_hits{0};
  upstream.Get("/api/item", [&](const httplib::Request&, httplib::Response& res) {
    ++upstream_hits;
    res.set_content("item-v1\n", "text/plain");
  });
  ServedUpstream served(upstream);
  const int up_port = served.port();

  const std::string config = R"(
workers: 1
upstreams:
  backend: { endpoints: ["127.0.0.1:)" +
                             std::to_string(up_port) + R"("] }
routes:
  - name: api
    match: { prefix: /api }
    middlewares:
      - type: fallback
        fallbacks:
          - { name: snapshot, kind: cache_snapshot, when: { status: [5xx] } }
      - type: circuit_breaker
        strategy: error_ratio
        threshold: 0.5
        min_request_amount: 5
        stat_interval_ms: 2000
        retry_timeout_ms: 800
      - type: fault
        seed: 1
        faults:
          - { name: backend-down, enabled: false, dependency_unavailable: { cluster: backend } }
    handler: { type: proxy, cluster: backend }
)";
  TempDir dir;
  auto check = run_sluice("check -c " + dir.write("sluice.yaml", config));
  for (const char* missing :
       {"unknown handler type \"proxy\"", "unknown middleware type \"circuit_breaker\"",
        "unknown middleware type \"fallback\"", "unknown key \"upstreams\""}) {
    if (check.output.find(missing) != std::string::npos)
      GTEST_SKIP() << "this build lacks a piece of the experiment: " << missing;
  }
  ASSERT_EQ(check.status, 0) << check.output;

  SluiceProcess gw(config);
  httplib::Client c("127.0.0.1", gw.port());
  httplib::Client admin("127.0.0.1", gw.admin_port());
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/api/item");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "item-v1\n");
  }
  const int before = upstream_hits.load();
  EXPECT_EQ(before, 5);

  ASSERT_EQ(admin.Post("/faults/backend-down/enable", "", "text/plain")->status, 200);
  auto listed = json::parse(admin.Get("/faults")->body);
  EXPECT_EQ(listed["unavailable_upstreams"]["backend"]["mode"], "connect_refused");
  int fallback_answers = 0;
  for (int i = 0; i < 30; ++i) {
    auto r = c.Get("/api/item");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "the snapshot answers";
    EXPECT_EQ(r->body, "item-v1\n");
    fallback_answers += r->has_header("X-Sluice-Fallback");
  }
  EXPECT_EQ(fallback_answers, 30);
  EXPECT_EQ(upstream_hits.load(), before) << "the upstream was never contacted";
  const auto breakers = admin.Get("/breakers");
  ASSERT_TRUE(breakers);
  EXPECT_NE(breakers->body.find("\"open\""), std::string::npos) << breakers->body;
  const auto dep = json::parse(admin.Get("/faults/backend-down")->body);
  EXPECT_GE(dep["injected"].get<int>(), 3);
  EXPECT_LT(dep["injected"].get<int>(), 30) << "the open breaker stops calls to the upstream";

  ASSERT_EQ(admin.Post("/faults/backend-down/disable", "", "text/plain")->status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(900));  // past retry_timeout_ms
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/api/item");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_GT(upstream_hits.load(), before) << "the breaker closed again after the probe";
}

}  // namespace
}  // namespace sluice::testing
