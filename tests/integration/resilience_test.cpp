// The resilience middlewares in the real binary: a failing route opens its breaker within one
// stat interval, fallbacks answer in order, the breaker half-opens after the retry timeout and
// closes once the route is healthy; exact 429 headers; no over-admission with two workers and
// many clients; the Redis backend shared by two instances and its failure policy; the admin
// API of the breakers; the shipped example config passes `sluice check`.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/raw_client.hpp"
#include "support/raw_upstream.hpp"
#include "support/redis_test_server.hpp"
#include "support/required_tool.hpp"
#include "support/served_upstream.hpp"
#include "support/sluice_process.hpp"
#include "support/write_upstream.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

std::string breaker_config(int handler_status) {
  return R"(
workers: 2
routes:
  - name: api
    match: { prefix: /api }
    middlewares:
      - type: fallback
        fallbacks:
          - { name: snapshot, kind: cache_snapshot, when: { status: [5xx] } }
          - { name: sorry, kind: static, when: { breaker_open: true }, status: 503, body: sorry }
      - { type: circuit_breaker, name: cb, strategy: error_ratio, threshold: 0.5,
          min_request_amount: 5, stat_interval_ms: 1000, retry_timeout_ms: 1000 }
    handler: { type: respond, status: )" +
         std::to_string(handler_status) + R"(, body: "from handler" }
  - name: plain
    middlewares:
      - { type: circuit_breaker, name: cb, strategy: error_count, threshold: 2,
          min_request_amount: 1, retry_timeout_ms: 30000 }
    handler: { type: respond, status: 500 }
)";
}

void reload(const SluiceProcess& gw, const std::string& config) {
  gw.rewrite_config(config);
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Post("/reload");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
}

json breakers(const SluiceProcess& gw) {
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/breakers");
  EXPECT_TRUE(r && r->status == 200);
  return r ? json::parse(r->body) : json();
}

std::string state_of(const json& list, const std::string& name) {
  for (const auto& b : list["breakers"])
    if (b["name"] == name) return b["state"];
  return "missing";
}

TEST(Resilience, BreakerOpensFallbacksServeInOrderThenHalfOpensAndCloses) {
  SluiceProcess gw(breaker_config(200));
  httplib::Client c("127.0.0.1", gw.port());
  auto good = c.Get("/api/a");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->body, "from handler");

  reload(gw, breaker_config(500));  // the breaker and fallback items are unchanged: kept
  const auto first_error = std::chrono::steady_clock::now();
  // min_request_amount 5 counts the good request too (same window): 4 or 5 errors trip it.
  int errors = 0;
  for (; errors < 10; ++errors) {
    auto r = c.Get("/api/b");
    ASSERT_TRUE(r);
    if (r->status != 500) break;
  }
  EXPECT_GE(errors, 4);
  EXPECT_LE(errors, 5);
  auto snap = c.Get("/api/a");
  auto sorry = c.Get("/api/b");
  EXPECT_LT(std::chrono::steady_clock::now() - first_error, 1s) << "open within one interval";
  ASSERT_TRUE(snap && sorry);
  EXPECT_EQ(snap->status, 200);
  EXPECT_EQ(snap->body, "from handler");
  EXPECT_EQ(snap->get_header_value("X-Sluice-Fallback"), "snapshot");
  EXPECT_TRUE(snap->has_header("Age"));
  EXPECT_EQ(sorry->status, 503);
  EXPECT_EQ(sorry->body, "sorry");
  EXPECT_EQ(sorry->get_header_value("X-Sluice-Fallback"), "sorry");
  EXPECT_EQ(state_of(breakers(gw), "cb:api"), "open");

  // After the retry timeout one probe passes; the route is healthy again, so it closes.
  std::this_thread::sleep_for(1100ms);
  reload(gw, breaker_config(200));
  auto probe = c.Get("/api/b");
  ASSERT_TRUE(probe);
  EXPECT_EQ(probe->status, 200);
  EXPECT_FALSE(probe->has_header("X-Sluice-Fallback"));
  EXPECT_EQ(state_of(breakers(gw), "cb:api"), "closed");
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* line :
       {"sluice_circuit_breaker_transitions_total{breaker=\"cb:api\",from="
        "\"closed\",to=\"open\"} 1",
        "sluice_circuit_breaker_transitions_total{breaker=\"cb:api\",from="
        "\"open\",to=\"half_open\"} 1",
        "sluice_circuit_breaker_transitions_total{breaker=\"cb:api\",from="
        "\"half_open\",to=\"closed\"} 1",
        "sluice_circuit_breaker_state{breaker=\"cb:api\"} 0",
        "sluice_fallback_total{fallback=\"snapshot\",result=\"served\",route=\"api\"} 1",
        "sluice_fallback_total{fallback=\"sorry\",result=\"served\",route=\"api\"} 2"})
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line;
  EXPECT_NE(gw.log().find("circuit breaker cb:api: closed -> open"), std::string::npos);
}

TEST(Resilience, OpenBreakerWithoutFallbackIs503WithRetryAfter) {
  SluiceProcess gw(breaker_config(500));
  httplib::Client c("127.0.0.1", gw.port());
  EXPECT_EQ(c.Get("/x")->status, 500);
  EXPECT_EQ(c.Get("/x")->status, 500);
  auto r = c.Get("/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "30");
  auto body = json::parse(r->body);
  EXPECT_EQ(body["error"], "circuit_open");
  EXPECT_TRUE(body.contains("request_id"));
}

TEST(Resilience, AdminForcesAndResetsBreakers) {
  SluiceProcess gw(breaker_config(200));
  httplib::Client c("127.0.0.1", gw.port());
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto list = breakers(gw);
  ASSERT_EQ(state_of(list, "cb:api"), "closed") << list.dump();
  for (const auto& b : list["breakers"]) {
    if (b["name"] != "cb:api") continue;
    EXPECT_EQ(b["config"]["strategy"], "error_ratio");
    EXPECT_EQ(b["config"]["min_request_amount"], 5);
    EXPECT_TRUE(b["window"].contains("error_ratio"));
  }
  auto forced = admin.Post("/breakers/cb:api/force_open");
  ASSERT_TRUE(forced);
  EXPECT_EQ(forced->status, 200) << forced->body;
  auto r = c.Get("/api/z");
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("X-Sluice-Fallback"), "sorry");
  EXPECT_EQ(admin.Post("/breakers/cb:api/reset")->status, 200);
  EXPECT_EQ(c.Get("/api/z")->status, 200);
  EXPECT_EQ(admin.Post("/breakers/nope/reset")->status, 404);
  EXPECT_EQ(admin.Post("/breakers/cb:api/explode")->status, 404);
}

const char* kLimitConfig = R"(
workers: 2
routes:
  - name: limited
    match: { prefix: /limited }
    middlewares:
      - { type: rate_limit, name: rl, limits: [ { name: global, key: route, rate: 1, burst: 2 } ] }
    handler: { type: respond, body: ok }
  - name: hammer
    middlewares:
      - { type: rate_limit, limits: [ { name: global, key: route, rate: 50, burst: 100 } ] }
    handler: { type: respond, body: ok }
)";

TEST(Resilience, RateLimitHeadersExact) {
  SluiceProcess gw(kLimitConfig);
  httplib::Client c("127.0.0.1", gw.port());
  auto a = c.Get("/limited");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->get_header_value("RateLimit-Limit"), "2");
  EXPECT_EQ(a->get_header_value("RateLimit-Remaining"), "1");
  EXPECT_EQ(a->get_header_value("RateLimit-Policy"), "1;w=1;burst=2");
  EXPECT_EQ(c.Get("/limited")->status, 200);
  auto r = c.Get("/limited");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(r->get_header_value("RateLimit-Limit"), "2");
  EXPECT_EQ(r->get_header_value("RateLimit-Remaining"), "0");
  EXPECT_EQ(r->get_header_value("RateLimit-Reset"), "2");
  EXPECT_EQ(r->get_header_value("RateLimit-Policy"), "1;w=1;burst=2");
  EXPECT_EQ(json::parse(r->body)["error"], "rate_limited");
}

// Both bounds are exact for a token bucket (GCRA, resilience/token_bucket.hpp), whatever the
// machine's load, as they use only when each request was sent and answered:
//   - over: every admission was decided between the first request sent and the last 200
//     read, and the bucket admits at most burst + rate * that time;
//   - under: a 429 decided at t means the bucket was empty at t, so at least
//     burst - 1 + rate * (t - the first admission) were admitted before it; t is no earlier
//     than that request was sent, the first admission no later than the first 200 was read.
// The second holds while the bucket is never full again after the start: that takes a pause of
// (burst - 1) / rate = 1.98 s with no decision (hence the burst of 100: two seconds of refill).
// A longer run than that lowers the bound by the rate over the excess. Before, under-admission
// was judged against the wall time until the last answer was read, 0.2 s spare, with a burst
// of 20 (0.4 s of CPU starvation lost tokens): 69 admitted against >= 70.98 once, for 1.22 s
// of which the clients asked for 1 s.
TEST(Resilience, NoOverAdmissionWithTwoWorkersAndManyClients) {
  constexpr double kRate = 50, kBurst = 100;
  SluiceProcess gw(kLimitConfig);
  using Clock = std::chrono::steady_clock;
  struct Asked {
    Clock::time_point sent, read;
    int status;  // 0: no answer
  };
  std::vector<std::vector<Asked>> asked(8);
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (auto& mine : asked) {
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", gw.port());
      for (auto sent = Clock::now(); sent - start < 1s; sent = Clock::now()) {
        auto r = c.Get("/hammer");
        mine.push_back({sent, Clock::now(), r ? r->status : 0});
      }
    });
  }
  for (auto& t : clients)
    t.join();
  const auto end = Clock::now();
  int admitted = 0, rejected = 0, failed = 0;
  auto first_sent = Clock::time_point::max(), first_200 = Clock::time_point::max();
  auto last_200 = Clock::time_point::min(), last_429_sent = Clock::time_point::min();
  for (const auto& mine : asked) {
    for (const auto& a : mine) {
      first_sent = std::min(first_sent, a.sent);
      if (a.status == 200) {
        ++admitted;
        first_200 = std::min(first_200, a.read);
        last_200 = std::max(last_200, a.read);
      } else if (a.status == 429) {
        ++rejected;
        last_429_sent = std::max(last_429_sent, a.sent);
      } else {
        ++failed;
      }
    }
  }
  ASSERT_GT(admitted, 0);
  ASSERT_GT(rejected, 0);
  const auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const double elapsed = secs(end - start);
  const double at_most = kBurst + kRate * secs(last_200 - first_sent);
  const double at_least = kBurst - 1 + kRate * secs(last_429_sent - first_200) -
                          kRate * std::max(0.0, elapsed - (kBurst - 1) / kRate);
  const std::string figures = "admitted " + std::to_string(admitted) + ", rejected " +
                              std::to_string(rejected) + " in " + std::to_string(elapsed) +
                              " s; bounds " + std::to_string(at_least) + " to " +
                              std::to_string(at_most);
  std::printf("[ limit    ] %s\n", figures.c_str());
  EXPECT_EQ(failed, 0);
  EXPECT_LE(admitted, at_most) << figures;
  EXPECT_GE(admitted, at_least) << "the limit is not over-strict: " << figures;
}

// command_timeout_ms is far above how late a loaded machine runs Redis or the client's thread:
// with 100 ms, one decision of the shared-quota part timed out once beside a CPU hog and the
// fail_closed instance answered 503 (a degraded decision). The killed Redis is a refused
// connection, answered at once whatever the timeout.
std::string redis_config(int port, const std::string& policy) {
  return R"(
workers: 2
routes:
  - name: shared
    middlewares:
      - type: rate_limit
        name: shared_rl
        backend: redis
        redis: { address: "127.0.0.1:)" +
         std::to_string(port) + R"(", key_prefix: "sluice-test", command_timeout_ms: 2000,
                 connect_timeout_ms: 200, on_failure: )" +
         policy + R"(, failure_threshold: 1 }
        limits: [ { name: q, key: route, rate: 0.5, burst: 10 } ]
    handler: { type: respond, body: ok }
)";
}

TEST(Resilience, RedisBackendSharesOneQuotaAndAppliesItsPolicyWhenRedisDies) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  SluiceProcess a(redis_config(redis.port(), "fail_closed"));
  SluiceProcess b(redis_config(redis.port(), "fail_open"));
  httplib::Client ca("127.0.0.1", a.port());
  httplib::Client cb("127.0.0.1", b.port());
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    for (auto* c : {&ca, &cb}) {
      auto r = c->Get("/");
      ASSERT_TRUE(r);
      if (r->status == 200)
        ++admitted;
      else
        EXPECT_EQ(r->status, 429);
    }
  }
  EXPECT_GE(admitted, 10);
  EXPECT_LE(admitted, 11) << "one quota of 10 (+1 refilled at 0.5/s) for both instances";

  redis.kill();
  for (auto* c : {&ca, &cb}) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) {
      auto r = c->Get("/");
      ASSERT_TRUE(r) << "no hang, no crash";
      if (c == &ca) {
        EXPECT_EQ(r->status, 503);
        EXPECT_EQ(json::parse(r->body)["error"], "rate_limiter_unavailable");
      } else {
        EXPECT_EQ(r->status, 200) << "fail_open allows";
      }
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  }
  httplib::Client admin("127.0.0.1", a.admin_port());
  auto m = admin.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("sluice_rate_limit_backend_up{limiter=\"shared_rl\",route=\"shared\"} 0"),
            std::string::npos)
      << m->body;
  EXPECT_NE(
      m->body.find(
          "sluice_rate_limit_redis_rtt_seconds_count{limiter=\"shared_rl\",route=\"shared\"}"),
      std::string::npos);
}

// Five fallbacks to a cluster in a row: one keep-alive connection from the cluster's pool, and
// the request goes out without its hop-by-hop headers (those named by Connection, Proxy-*).
TEST(Resilience, UpstreamFallbackUsesThePoolAndDropsHopByHopHeaders) {
  std::mutex mutex;
  std::vector<std::string> heads;
  RawUpstream shadow([&](int fd) {
    for (std::string head = read_head(fd); !head.empty(); head = read_head(fd)) {
      {
        std::lock_guard lock(mutex);
        heads.push_back(head);
      }
      write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nshadow");
    }
  });
  SluiceProcess gw(R"(
workers: 1
upstreams:
  shadow_cluster: { endpoints: ["127.0.0.1:)" +
                   std::to_string(shadow.port()) + R"("] }
routes:
  - name: api
    middlewares:
      - type: fallback
        fallbacks:
          - { name: shadow, kind: upstream, cluster: shadow_cluster, when: { status: [5xx] } }
    handler: { type: respond, status: 502 }
)");
  RawClient c(gw.port());
  for (int i = 0; i < 5; ++i) {
    c.send(
        "GET /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n"
        "Proxy-Authorization: Basic eDp5\r\nX-Kept: k\r\n\r\n");
    const std::string answers = c.read_responses(i + 1);  // all answers so far
    ASSERT_EQ(status_codes(answers), std::vector<int>(static_cast<std::size_t>(i + 1), 200))
        << answers;
  }
  EXPECT_EQ(shadow.accepted(), 1) << "five fallbacks over one pooled connection";
  EXPECT_EQ(c.read_responses(5).find("Content-Type"), std::string::npos)
      << "the shadow sent none: no empty one is made up";
  std::lock_guard lock(mutex);
  ASSERT_EQ(heads.size(), 5u);
  EXPECT_NE(heads[0].find("X-Kept: k"), std::string::npos) << heads[0];
  EXPECT_EQ(heads[0].find("X-Secret"), std::string::npos) << heads[0];
  EXPECT_EQ(heads[0].find("Proxy-Authorization"), std::string::npos) << heads[0];
}

// The proxy moves the request body into its own upstream request; the `upstream` fallback must
// still send the body the client sent (it sent an empty one before).
TEST(Resilience, AnUpstreamFallbackSendsAWritesBodyAfterTheProxyFailed) {
  WriteUpstream primary;  // never started: connections refused
  WriteUpstream shadow;
  shadow.start();
  SluiceProcess gw(R"(
workers: 1
upstreams:
  primary: { endpoints: ["127.0.0.1:)" +
                   std::to_string(primary.port()) + R"("], connect_timeout_ms: 200 }
  shadow_cluster: { endpoints: ["127.0.0.1:)" +
                   std::to_string(shadow.port()) + R"("] }
routes:
  - name: api
    middlewares:
      - type: fallback
        fallbacks:
          - { name: shadow, kind: upstream, cluster: shadow_cluster, timeout_ms: 2000,
              when: { upstream_error: true } }
    handler: { type: proxy, cluster: primary }
)");
  std::string body(64 * 1024, '\0');
  for (std::size_t i = 0; i < body.size(); ++i)
    body[i] = static_cast<char>((i * 131) % 251);
  httplib::Client c("127.0.0.1", gw.port());
  for (const char* method : {"POST", "PUT"}) {
    auto r = std::string(method) == "POST" ? c.Post("/orders", body, "application/octet-stream")
                                           : c.Put("/orders", body, "application/octet-stream");
    ASSERT_TRUE(r) << method;
    EXPECT_EQ(r->status, 200) << method << ": " << r->body;
    EXPECT_EQ(r->get_header_value("X-Sluice-Fallback"), "shadow");
  }
  const auto got = shadow.got();
  ASSERT_EQ(got.size(), 2u);
  for (const auto& g : got)
    EXPECT_TRUE(g.body == body) << "the shadow got " << g.body.size() << " bytes of "
                                << body.size();
}

// The shadow's /ok has a route whose fallback may take 5 s, and its /slow never answers while
// the test runs (held until the end): the fallback serves the one and times out to the next on
// the other whatever the machine's load. Before, one 150 ms timeout did both (and the fixed
// endpoint ran on the 100 ms default), and a test process starved for that long made /ok time
// out too (seen once: the handler's empty 500 served).
TEST(Resilience, UpstreamFallbackServesFromTheShadowOrTimesOutToTheNext) {
  std::mutex mutex;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int> slow_calls{0};
  httplib::Server shadow;
  shadow.Get("/ok", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("from shadow, tier " + req.get_header_value("X-User-Tier"), "text/plain");
  });
  shadow.Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    ++slow_calls;
    std::unique_lock lock(mutex);
    cv.wait_for(lock, 30s, [&] { return released; });
    res.set_content("too late", "text/plain");
  });
  ServedUpstream served(shadow);
  struct Release {  // before `served` stops the server: its /slow handler returns first
    std::mutex& mutex;
    std::condition_variable& cv;
    bool& released;
    ~Release() {
      std::lock_guard lock(mutex);
      released = true;
      cv.notify_all();
    }
  } release{mutex, cv, released};
  const int port = served.port();
  {
    SluiceProcess gw(R"(
workers: 2
upstreams:
  shadow_cluster: { endpoints: ["127.0.0.1:)" +
                     std::to_string(port) + R"("] }
routes:
  - name: slow
    match: { prefix: /slow }
    middlewares:
      - type: fallback
        fallbacks:
          - { name: shadow, kind: upstream, cluster: shadow_cluster, when: { status: [5xx] },
              timeout_ms: 150 }
          - { name: sorry, kind: static, status: 503, body: sorry, when: { status: [5xx] } }
    handler: { type: respond, status: 502 }
  - name: api
    middlewares:
      - type: fallback
        fallbacks:
          - { name: shadow, kind: upstream, cluster: shadow_cluster, when: { status: [5xx] },
              timeout_ms: 5000 }
          - { name: sorry, kind: static, status: 503, body: sorry, when: { status: [5xx] } }
    handler: { type: respond, status: 502 }
)");
    httplib::Client c("127.0.0.1", gw.port());
    c.set_read_timeout(10s);  // a hang fails the test below rather than waiting on the shadow
    auto ok = c.Get("/ok", {{"X-User-Tier", "vip"}});
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    EXPECT_EQ(ok->body, "from shadow, tier vip");
    EXPECT_EQ(ok->get_header_value("X-Sluice-Fallback"), "shadow");
    const auto t0 = std::chrono::steady_clock::now();
    auto slow = c.Get("/slow");
    const auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(slow) << "the shadow's 150 ms timeout did not end the call";
    // The shadow got the call and has not answered (it answers when the test ends): the answer
    // is the next fallback's, after the timeout, not before.
    EXPECT_EQ(slow_calls.load(), 1);
    EXPECT_GE(took, 140ms);
    EXPECT_EQ(slow->status, 503);
    EXPECT_EQ(slow->body, "sorry");
    EXPECT_EQ(slow->get_header_value("X-Sluice-Fallback"), "sorry");
    httplib::Client admin("127.0.0.1", gw.admin_port());
    auto m = admin.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find(
                  "sluice_fallback_total{fallback=\"shadow\",result=\"served\",route=\"api\"} 1"),
              std::string::npos)
        << m->body;
    EXPECT_NE(
        m->body.find(
            "sluice_fallback_total{fallback=\"shadow\",result=\"timed_out\",route=\"slow\"} 1"),
        std::string::npos)
        << m->body;
  }
  {  // a fixed endpoint instead of a cluster
    SluiceProcess gw(R"(
routes:
  - name: api
    middlewares:
      - type: fallback
        fallbacks:
          - { name: shadow, kind: upstream, endpoint: "127.0.0.1:)" +
                     std::to_string(port) + R"(", when: {}, timeout_ms: 5000 }
    handler: { type: respond, status: 500 }
)");
    httplib::Client c("127.0.0.1", gw.port());
    auto ok = c.Get("/ok");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->body, "from shadow, tier ");
  }
}

// A fixed `endpoint:` is an implicit one-endpoint cluster (upstream/detached_call.hpp): down,
// each request fails over to the next fallback (counted as failed); it is never ejected however
// often it fails, and a fresh connection per call finds it as soon as it is back.
TEST(Resilience, AFixedEndpointFallbackThatIsDownFailsOverAndIsUsedAgainOnceBack) {
  WriteUpstream shadow;  // not started: connections refused
  SluiceProcess gw(R"(
workers: 1
routes:
  - name: api
    middlewares:
      - type: fallback
        fallbacks:
          - { name: shadow, kind: upstream, endpoint: "127.0.0.1:)" +
                   std::to_string(shadow.port()) + R"(", timeout_ms: 2000, when: {} }
          - { name: sorry, kind: static, status: 503, body: sorry, when: {} }
    handler: { type: respond, status: 500 }
)");
  httplib::Client c("127.0.0.1", gw.port());
  for (int i = 0; i < 7; ++i) {  // more than the default outlier's 5 consecutive failures
    auto r = c.Post("/orders", "one", "text/plain");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 503) << i;
    EXPECT_EQ(r->body, "sorry") << i;
  }
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto m = admin.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("sluice_fallback_total{fallback=\"shadow\",result=\"failed\",route="
                         "\"api\"} 7"),
            std::string::npos)
      << m->body;
  // No cluster series for the implicit cluster: the metrics are what they were.
  EXPECT_EQ(m->body.find("sluice_upstream_"), std::string::npos);
  shadow.start();
  auto r = c.Post("/orders", "two", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, "stored");
  EXPECT_EQ(r->get_header_value("X-Sluice-Fallback"), "shadow");
  const auto got = shadow.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "two");
}

TEST(Resilience, ExampleFallbackConfigPassesCheck) {
  auto r = run_sluice("check -c " + source_dir() + "/examples/fallback.yaml");
  EXPECT_EQ(r.status, 0) << r.output;
}

}  // namespace
}  // namespace sluice::testing
