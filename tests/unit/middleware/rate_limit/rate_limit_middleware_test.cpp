// The rate_limit middleware in a chain with a fake clock: exact 429 and RateLimit-* headers,
// several limits, keys, the asynchronous backend path, metrics, reloads and config errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "middleware/rate_limit/rate_limit_middleware.hpp"
#include "support/resilience_harness.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using middleware::RateLimitMiddleware;

std::string config(const std::string& limiter) {
  return R"(
routes:
  - name: api
    middlewares:
      - )" +
         limiter + R"(
    handler: { type: respond }
)";
}

TEST(RateLimitMiddleware, RejectsWithExact429Headers) {
  Harness h(
      config("{type: rate_limit, name: rl, limits: [{name: per_ip, key: client_ip, "
             "rate: 2, burst: 3}]}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto first = h.get("api");
  EXPECT_EQ(first->status(), 200);
  EXPECT_EQ(first->header("RateLimit-Limit"), "3");
  EXPECT_EQ(first->header("RateLimit-Remaining"), "2");
  EXPECT_EQ(first->header("RateLimit-Reset"), "1");  // 0.5 s to refill one token, rounded up
  EXPECT_EQ(first->header("RateLimit-Policy"), "2;w=1;burst=3");
  EXPECT_EQ(h.get("api")->header("RateLimit-Remaining"), "1");
  EXPECT_EQ(h.get("api")->header("RateLimit-Remaining"), "0");
  auto rejected = h.get("api");
  EXPECT_EQ(rejected->status(), 429);
  EXPECT_EQ(rejected->header("Retry-After"), "1");
  EXPECT_EQ(rejected->header("RateLimit-Limit"), "3");
  EXPECT_EQ(rejected->header("RateLimit-Remaining"), "0");
  EXPECT_EQ(rejected->header("RateLimit-Reset"), "2");  // 1.5 s until full
  EXPECT_EQ(rejected->header("RateLimit-Policy"), "2;w=1;burst=3");
  auto body = nlohmann::json::parse(rejected->body());
  EXPECT_EQ(body["error"], "rate_limited");
  EXPECT_EQ(rejected->ex->detail(), "rate_limited");
  EXPECT_EQ(h.handler.calls, 3);
  // Another client has its own bucket; time refills ours.
  EXPECT_EQ(h.get("api", "/", {}, "10.0.0.2")->status(), 200);
  h.clock.advance(500ms);
  EXPECT_EQ(h.get("api")->status(), 200);
  EXPECT_EQ(h.get("api")->status(), 429);
  const auto m = h.metrics_text();
  EXPECT_NE(m.find("sluice_rate_limit_decisions_total{limiter=\"rl/"
                   "per_ip\",result=\"allowed\",route=\"api\"} 5"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("sluice_rate_limit_decisions_total{limiter=\"rl/"
                   "per_ip\",result=\"denied\",route=\"api\"} 2"),
            std::string::npos);
}

TEST(RateLimitMiddleware, SeveralLimitsReportTheTightest) {
  Harness h(
      config("{type: rate_limit, limits: [{name: per_ip, key: client_ip, rate: 10, "
             "burst: 5}, {name: global, key: route, rate: 1, burst: 2}]}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto a = h.get("api", "/", {}, "1.1.1.1");
  EXPECT_EQ(a->header("RateLimit-Remaining"), "1");  // global's
  EXPECT_EQ(a->header("RateLimit-Limit"), "2");
  EXPECT_EQ(a->header("RateLimit-Policy"), "10;w=1;burst=5, 1;w=1;burst=2");
  EXPECT_EQ(h.get("api", "/", {}, "2.2.2.2")->status(), 200);
  auto c = h.get("api", "/", {}, "3.3.3.3");
  EXPECT_EQ(c->status(), 429);  // the global limit, whatever the IP
  EXPECT_EQ(c->header("Retry-After"), "1");
}

TEST(RateLimitMiddleware, CombinedKeysAndHeadersOff) {
  Harness h(
      config("{type: rate_limit, headers: false, limits: [{key: [client_ip, "
             "\"header:X-Tenant\"], rate: 1, burst: 1}]}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto a = h.get("api", "/", {{"X-Tenant", "a"}});
  EXPECT_EQ(a->status(), 200);
  EXPECT_FALSE(a->ex->response().has_header("RateLimit-Limit"));
  EXPECT_EQ(h.get("api", "/", {{"X-Tenant", "b"}})->status(), 200);
  auto again = h.get("api", "/", {{"X-Tenant", "a"}});
  EXPECT_EQ(again->status(), 429);
  EXPECT_EQ(again->header("RateLimit-Limit"), "1") << "rejections always carry the headers";
}

TEST(RateLimitMiddleware, PolicyTextFollowsTheDraft) {
  EXPECT_EQ(RateLimitMiddleware::policy_of({.rate_per_second = 10, .burst = 20}),
            "10;w=1;burst=20");
  EXPECT_EQ(RateLimitMiddleware::policy_of({.rate_per_second = 0.5, .burst = 1}), "1;w=2;burst=1");
  EXPECT_EQ(RateLimitMiddleware::policy_of({.rate_per_second = 2.5, .burst = 5}), "5;w=2;burst=5");
}

// A backend that answers later, from the test: the middleware must wait without blocking.
class LaterBackend final : public resilience::RateLimiterBackend {
 public:
  std::optional<resilience::RateDecision> try_decide(std::string_view,
                                                     const resilience::RateLimit&) override {
    return std::nullopt;
  }
  void decide_async(std::string key, resilience::RateLimit,
                    std::function<void(resilience::RateDecision)> done) override {
    keys.push_back(key);
    waiting.push_back(std::move(done));
  }
  std::vector<std::string> keys;
  std::vector<std::function<void(resilience::RateDecision)>> waiting;
};

struct AsyncFixture {
  std::shared_ptr<LaterBackend> backend = std::make_shared<LaterBackend>();
  Chain chain{"api"};
  ScriptedHandler handler;
  RouteInfo route{"api"};
  explicit AsyncFixture(bool headers = true) {
    middleware::RateLimitConfig c;
    c.headers = headers;
    middleware::LimitRule rule;
    rule.name = "per_ip";
    rule.limit = {.rate_per_second = 5, .burst = 5};
    c.limits.push_back(rule);
    c.fail_closed_status = 503;
    limiter = std::make_shared<RateLimitMiddleware>("rl", std::move(c), backend);
    EXPECT_TRUE(chain.use(limiter).ok());
  }
  std::shared_ptr<RateLimitMiddleware> limiter;
  ~AsyncFixture() {
    backend->waiting.clear();  // drops Resumes: they post to their hosts, drained here
    for (auto& host : hosts)
      host->advance(std::chrono::hours(24));
  }
  std::vector<std::shared_ptr<ManualHost>> hosts;
  std::unique_ptr<Call> start() {
    auto call = std::make_unique<Call>();
    hosts.push_back(call->host);
    call->ex = &call->host->exchange("GET", "/");
    ExchangeDriver(*call->ex).set_route(&route);
    call->snapshot = chain.current();
    Call* raw = call.get();
    ExchangeDriver(*call->ex).run(*call->snapshot, handler, [raw] { raw->done = true; });
    call->host->run_all();
    return call;
  }
};

TEST(RateLimitMiddleware, AsyncBackendAllowsAfterTheAnswer) {
  AsyncFixture f;
  auto call = f.start();
  EXPECT_FALSE(call->done);
  ASSERT_EQ(f.backend->waiting.size(), 1u);
  EXPECT_EQ(f.backend->keys[0], "rl:per_ip:");
  f.backend->waiting[0]({.allowed = true, .limit = 5, .remaining = 4, .reset_after = 200ms});
  call->host->run_all();
  EXPECT_TRUE(call->done);
  EXPECT_EQ(call->status(), 200);
  EXPECT_EQ(call->header("RateLimit-Remaining"), "4");
  EXPECT_EQ(f.handler.calls, 1);
}

// headers: false — post_handle has nothing to do, so the chain skips it (Middleware::skip_hooks);
// an allowed answer has no RateLimit-* headers, a rejection still has them.
TEST(RateLimitMiddleware, AsyncBackendWithHeadersOffAllowsWithoutThemAndRejectsWithThem) {
  AsyncFixture f(false);
  EXPECT_FALSE(f.limiter->calls_post_handle());
  EXPECT_TRUE(AsyncFixture().limiter->calls_post_handle());
  auto call = f.start();
  ASSERT_EQ(f.backend->waiting.size(), 1u);
  f.backend->waiting[0]({.allowed = true, .limit = 5, .remaining = 4, .reset_after = 200ms});
  call->host->run_all();
  EXPECT_TRUE(call->done);
  EXPECT_EQ(call->status(), 200);
  EXPECT_FALSE(call->ex->response().has_header("RateLimit-Remaining"));
  EXPECT_FALSE(call->ex->response().has_header("RateLimit-Policy"));

  auto denied = f.start();
  f.backend->waiting[1](
      {.allowed = false, .limit = 5, .remaining = 0, .reset_after = 1s, .retry_after = 1s});
  denied->host->run_all();
  EXPECT_EQ(denied->status(), 429);
  EXPECT_EQ(denied->header("RateLimit-Limit"), "5");
  EXPECT_EQ(f.handler.calls, 1);
}

TEST(RateLimitMiddleware, AsyncBackendDeniesAndFailClosedIs503) {
  AsyncFixture f;
  auto call = f.start();
  f.backend->waiting[0](
      {.allowed = false, .limit = 5, .remaining = 0, .reset_after = 1s, .retry_after = 1200ms});
  call->host->run_all();
  EXPECT_EQ(call->status(), 429);
  EXPECT_EQ(call->header("Retry-After"), "2");
  EXPECT_EQ(call->ex->answered_by(), "rl");
  EXPECT_EQ(f.handler.calls, 0);

  auto degraded = f.start();
  f.backend->waiting[1]({.allowed = false, .retry_after = 1s, .degraded = true});
  degraded->host->run_all();
  EXPECT_EQ(degraded->status(), 503);
  EXPECT_EQ(nlohmann::json::parse(degraded->body())["error"], "rate_limiter_unavailable");
}

TEST(RateLimitMiddleware, CancelledWhileWaitingIsHarmless) {
  AsyncFixture f;
  auto call = f.start();
  ExchangeDriver(*call->ex).cancel();
  call->host->run_all();
  EXPECT_TRUE(call->done);
  EXPECT_EQ(call->status(), 499);
  f.backend->waiting[0]({.allowed = true, .limit = 5, .remaining = 4});
  call->host->run_all();
  EXPECT_EQ(f.handler.calls, 0);
}

TEST(RateLimitMiddleware, BucketsSurviveAReloadOfAnUnchangedMiddleware) {
  const std::string limiter = "{type: rate_limit, limits: [{rate: 1, burst: 1}]}";
  Harness h(config(limiter));
  EXPECT_EQ(h.get("api")->status(), 200);
  auto errors = h.reload(config(limiter));
  ASSERT_TRUE(errors.empty()) << errors[0];
  EXPECT_EQ(h.get("api")->status(), 429);
}

// The decision counters live in the process's services (per-worker shards summed at scrape): a
// reload that rebuilds the middleware finds its series again, and the count goes on from there.
TEST(RateLimitMiddleware, DecisionCountsGoOnAcrossAReloadThatRebuildsTheMiddleware) {
  Harness h(config("{type: rate_limit, name: rl, limits: [{name: q, rate: 100, burst: 100}]}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  const auto before = h.route("api").chain->current()->entries()[0].middleware;  // kept alive
  EXPECT_EQ(h.get("api")->status(), 200);
  EXPECT_EQ(h.get("api")->status(), 200);
  auto errors =
      h.reload(config("{type: rate_limit, name: rl, limits: [{name: q, rate: 100, burst: 2}]}"));
  ASSERT_TRUE(errors.empty()) << errors[0];
  ASSERT_NE(h.route("api").chain->current()->entries()[0].middleware, before)
      << "a changed item is a new middleware";
  EXPECT_EQ(h.get("api")->status(), 200);
  EXPECT_EQ(h.get("api")->status(), 200);
  EXPECT_EQ(h.get("api")->status(), 429);  // the new middleware's bucket: burst 2
  const auto m = h.metrics_text();
  const std::string allowed =
      R"(sluice_rate_limit_decisions_total{limiter="rl/q",result="allowed",route="api"} )";
  ASSERT_NE(m.find(allowed + "4"), std::string::npos) << m;
  EXPECT_EQ(m.find(allowed), m.rfind(allowed)) << "one series, not one per load: " << m;
  EXPECT_NE(
      m.find(R"(sluice_rate_limit_decisions_total{limiter="rl/q",result="denied",route="api"} 1)"),
      std::string::npos)
      << m;
}

TEST(RateLimitMiddleware, ErrorsOfSeveralMiddlewaresAreReportedExactlyOnce) {
  Harness h(R"(
routes:
  - name: api
    middlewares:
      - { type: circuit_breaker }
      - { type: rate_limit, limits: [ { rate: 0 } ] }
      - { type: concurrency_limit, max_in_flight: 1, reject_status: 500 }
    handler: { type: respond }
)");
  EXPECT_EQ(h.errors,
            (std::vector<std::string>{
                "test.yaml:5:9: routes[0].middlewares[0].threshold: is required",
                "test.yaml:6:47: routes[0].middlewares[1].limits[0].rate: must be greater than 0",
                "test.yaml:7:69: routes[0].middlewares[2].reject_status: must be 503 or 429"}));
}

TEST(RateLimitMiddleware, ConfigErrors) {
  auto first_error = [](const std::string& limiter) {
    Harness h(config(limiter));
    return h.errors.empty() ? std::string() : h.errors[0];
  };
  EXPECT_EQ(first_error("{type: rate_limit}"),
            "test.yaml:5:9: routes[0].middlewares[0].limits: at least one limit is required, "
            "e.g. [{name: per_ip, key: client_ip, rate: 10, burst: 20}]");
  EXPECT_EQ(first_error("{type: rate_limit, limits: [{burst: 2}]}"),
            "test.yaml:5:37: routes[0].middlewares[0].limits[0].rate: is required (tokens per "
            "second)");
  EXPECT_EQ(first_error("{type: rate_limit, limits: [{rate: 0}]}"),
            "test.yaml:5:44: routes[0].middlewares[0].limits[0].rate: must be greater than 0");
  EXPECT_EQ(first_error("{type: rate_limit, limits: [{rate: 1, key: ip}]}"),
            "test.yaml:5:52: routes[0].middlewares[0].limits[0].key: unknown key \"ip\"; expected "
            "client_ip, route, user, tier, header:<Name> or a list of them");
  EXPECT_EQ(first_error("{type: rate_limit, worker_leases: true, limits: [{rate: 1}]}"),
            "test.yaml:5:43: routes[0].middlewares[0].worker_leases: needs headers: false "
            "(RateLimit-Remaining would show the figure of a lease's start)");
  EXPECT_EQ(first_error("{type: rate_limit, headers: false, worker_leases: false, "
                        "limits: [{rate: 1}]}"),
            "");
  EXPECT_EQ(first_error("{type: rate_limit, backend: memcached, limits: [{rate: 1}]}"),
            "test.yaml:5:37: routes[0].middlewares[0].backend: unknown value \"memcached\"; "
            "expected one of: local, redis");
  EXPECT_EQ(first_error("{type: rate_limit, backend: redis, redis: {command_timeout_ms: 0}, "
                        "limits: [{rate: 1}]}"),
            "test.yaml:5:51: routes[0].middlewares[0].redis: redis.command_timeout: must be > 0 "
            "ms (got 0)");
  EXPECT_EQ(first_error("{type: rate_limit, backend: redis, redis: {on_failure: allow}, "
                        "limits: [{rate: 1}]}"),
            "test.yaml:5:64: routes[0].middlewares[0].redis.on_failure: unknown value \"allow\"; "
            "expected one of: fail_open, fail_closed, local");
}

}  // namespace
}  // namespace sluice::testing
