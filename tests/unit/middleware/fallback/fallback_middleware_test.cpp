// The fallback middleware in front of the breaker and the limiters: rule order, snapshots with
// Age, cascading when a fallback cannot answer, breaker and concurrency rejections, the route
// p99 and user-tier rules, exceptions, metrics and config errors.
#include <gtest/gtest.h>

#include "support/resilience_harness.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

const char* kConfig = R"(
routes:
  - name: api
    middlewares:
      - type: fallback
        name: fb
        snapshots: { ttl_ms: 60000, key_headers: [Accept-Language] }
        fallbacks:
          - name: p0_snapshot
            kind: cache_snapshot
            when: { route_p99_above_ms: 800, user_tier: { header: X-User-Tier, in: [vip] } }
          - name: snapshot
            kind: cache_snapshot
            when: { status: [5xx] }
          - name: busy
            kind: static
            when: { concurrency_limited: true, breaker_open: true }
            status: 503
            headers: { Content-Type: application/json, Retry-After: "1" }
            body: '{"degraded":true}'
          - name: last
            kind: static
            when: { exception: true, status: [500] }
            status: 200
            body: "last resort"
      - { type: circuit_breaker, name: cb, strategy: error_count, threshold: 3,
          min_request_amount: 1, retry_timeout_ms: 1000 }
      - { type: concurrency_limit, max_in_flight: 1 }
    handler: { type: respond }
)";

TEST(FallbackMiddleware, SuccessPassesAndIsKeptAsSnapshot) {
  Harness h(kConfig);
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.body = "fresh";
  auto ok = h.get("api", "/price?id=1");
  EXPECT_EQ(ok->status(), 200);
  EXPECT_FALSE(ok->ex->response().has_header("X-Sluice-Fallback"));
  h.clock.advance(7s);
  h.handler.status = 502;
  h.handler.body = "bad gateway";
  auto served = h.get("api", "/price?id=1");
  EXPECT_EQ(served->status(), 200);
  EXPECT_EQ(served->body(), "fresh");
  EXPECT_EQ(served->header("X-Sluice-Fallback"), "snapshot");
  EXPECT_EQ(served->header("Age"), "7");
  EXPECT_EQ(served->ex->detail(), "fallback:snapshot");
  // Another path has no snapshot, and the status rule of "last" does not match 502.
  auto miss = h.get("api", "/price?id=2");
  EXPECT_EQ(miss->status(), 502);
  EXPECT_FALSE(miss->ex->response().has_header("X-Sluice-Fallback"));
  const auto m = h.metrics_text();
  EXPECT_NE(
      m.find("sluice_fallback_total{fallback=\"snapshot\",result=\"served\",route=\"api\"} 1"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find("sluice_fallback_total{fallback=\"snapshot\",result=\"failed\",route=\"api\"} 1"),
      std::string::npos);
}

TEST(FallbackMiddleware, KeyHeadersSeparateSnapshots) {
  Harness h(kConfig);
  h.handler.body = "english";
  h.get("api", "/p", {{"Accept-Language", "en"}});
  h.handler.status = 500;
  EXPECT_EQ(h.get("api", "/p", {{"Accept-Language", "en"}})->body(), "english");
  auto fr = h.get("api", "/p", {{"Accept-Language", "fr"}});
  EXPECT_EQ(fr->header("X-Sluice-Fallback"), "last") << "no French snapshot: cascades";
  EXPECT_EQ(fr->body(), "last resort");
}

TEST(FallbackMiddleware, AnswersForAnOpenBreakerWithItsStaticFallback) {
  Harness h(kConfig);
  h.handler.status = 503;
  for (int i = 0; i < 3; ++i)
    h.get("api", "/nosnap");
  auto r = h.get("api", "/nosnap");
  EXPECT_EQ(r->status(), 503);
  EXPECT_EQ(r->header("X-Sluice-Fallback"), "busy");
  EXPECT_EQ(r->header("Retry-After"), "1");
  EXPECT_EQ(r->header("Content-Type"), "application/json");
  EXPECT_EQ(r->body(), "{\"degraded\":true}");
  EXPECT_EQ(r->ex->detail(), "circuit_open,fallback:busy");
  EXPECT_EQ(h.handler.calls, 3);
}

TEST(FallbackMiddleware, AnswersWhenTheConcurrencyLimitRejects) {
  Harness h(kConfig);
  h.handler.hold = true;
  auto a = h.get("api", "/x");
  auto b = h.get("api", "/x");
  EXPECT_EQ(b->header("X-Sluice-Fallback"), "busy");
  EXPECT_EQ(b->ex->detail(), "concurrency_limited,fallback:busy");
}

TEST(FallbackMiddleware, SlowRouteServesVipsTheirSnapshotFirst) {
  Harness h(kConfig);
  h.handler.body = "snap";
  h.get("api", "/v");
  h.handler.latency = 900ms;  // the route's p99 goes above 800 ms
  for (int i = 0; i < 20; ++i)
    h.get("api", "/v");
  h.handler.latency = 0ms;
  h.handler.status = 500;
  auto vip = h.get("api", "/v", {{"X-User-Tier", "vip"}});
  EXPECT_EQ(vip->header("X-Sluice-Fallback"), "p0_snapshot");
  auto other = h.get("api", "/v", {{"X-User-Tier", "free"}});
  EXPECT_EQ(other->header("X-Sluice-Fallback"), "snapshot");
}

// The seed's P0 on a slow success: once the route's p99 is above 800 ms, a VIP's request is
// answered from the snapshot before the handler runs; other users still wait for the handler,
// and a VIP before the route turned slow went to the handler too.
TEST(FallbackMiddleware, BeforeHandlerShortCircuitsASlowRouteForVips) {
  Harness h(R"(
routes:
  - name: api
    middlewares:
      - type: fallback
        fallbacks:
          - name: p0
            kind: cache_snapshot
            when: { before_handler: true, route_p99_above_ms: 800,
                    user_tier: { header: X-User-Tier, in: [vip] } }
          - { name: sorry, kind: static, status: 503, when: { status: [5xx] } }
    handler: { type: respond }
)");
  h.handler.body = "v1";
  auto first = h.get("api", "/v", {{"X-User-Tier", "vip"}});
  EXPECT_EQ(first->header("X-Sluice-Fallback"), "");  // the route is fast: the handler answers
  EXPECT_EQ(h.handler.calls, 1);
  h.handler.latency = 900ms;
  h.handler.body = "v2";
  for (int i = 0; i < 20; ++i)
    h.get("api", "/v");  // slow successes: no failure anywhere
  const int calls = h.handler.calls;
  auto vip = h.get("api", "/v", {{"X-User-Tier", "vip"}});
  EXPECT_EQ(vip->status(), 200);
  EXPECT_EQ(vip->header("X-Sluice-Fallback"), "p0");
  EXPECT_EQ(vip->body(), "v2");  // the last good response, stored from a slow success
  EXPECT_EQ(h.handler.calls, calls) << "the handler is not called for the VIP";
  auto other = h.get("api", "/v", {{"X-User-Tier", "free"}});
  EXPECT_EQ(other->header("X-Sluice-Fallback"), "");
  EXPECT_EQ(h.handler.calls, calls + 1);
  // No snapshot for this path: the VIP goes to the handler (and the next rule, after it).
  auto unknown = h.get("api", "/never-seen", {{"X-User-Tier", "vip"}});
  EXPECT_EQ(unknown->header("X-Sluice-Fallback"), "");
  EXPECT_EQ(h.handler.calls, calls + 2);
}

TEST(FallbackMiddleware, RecoversFromExceptions) {
  Harness h(kConfig);
  h.handler.throws = true;
  auto r = h.get("api", "/boom");
  EXPECT_EQ(r->status(), 200);
  EXPECT_EQ(r->body(), "last resort");
  EXPECT_EQ(r->header("X-Sluice-Fallback"), "last");
}

TEST(FallbackMiddleware, UpstreamOffAServerWorkerFailsAndCascades) {
  Harness h(R"(
routes:
  - name: api
    middlewares:
      - type: fallback
        fallbacks:
          - { name: shadow, kind: upstream, endpoint: "127.0.0.1:9", when: {}, timeout_ms: 300 }
          - { name: sorry, kind: static, status: 503, body: sorry, when: {} }
    handler: { type: respond }
)");
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.status = 500;
  auto r = h.get("api");
  EXPECT_TRUE(r->done);
  EXPECT_EQ(r->header("X-Sluice-Fallback"), "sorry");
  EXPECT_NE(h.metrics_text().find(
                "sluice_fallback_total{fallback=\"shadow\",result=\"failed\",route=\"api\"} 1"),
            std::string::npos);
}

TEST(FallbackMiddleware, AReloadThatDropsTheShadowClusterIsRefused) {
  const std::string route = R"(
routes:
  - name: api
    middlewares:
      - type: fallback
        fallbacks: [ { name: shadow, kind: upstream, cluster: shadow, when: {} } ]
    handler: { type: respond }
)";
  Harness h("upstreams: { shadow: { endpoints: [\"127.0.0.1:1\"] } }" + route);
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto kept = h.reload("upstreams: { shadow: { endpoints: [\"127.0.0.1:2\"] } }" + route);
  EXPECT_TRUE(kept.empty()) << kept[0];
  auto errors = h.reload("upstreams: { other: { endpoints: [\"127.0.0.1:2\"] } }" + route);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("unknown cluster \"shadow\" (not in upstreams:)"), std::string::npos)
      << errors[0];
}

TEST(FallbackMiddleware, ConfigErrors) {
  auto first_error = [](const std::string& fallback) {
    Harness h("routes: [{name: api, middlewares: [" + fallback + "], handler: {type: echo}}]");
    return h.errors.empty() ? std::string() : h.errors[0];
  };
  EXPECT_EQ(first_error("{type: fallback}"),
            "test.yaml:1:36: routes[0].middlewares[0].fallbacks: at least one fallback is "
            "required");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: upstream}]}"),
            "test.yaml:1:65: routes[0].middlewares[0].fallbacks[0]: kind: upstream needs cluster: "
            "<name of an upstreams: cluster> or endpoint: \"host:port\"");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: upstream, cluster: shadow}]}"),
            "test.yaml:1:91: routes[0].middlewares[0].fallbacks[0].cluster: unknown cluster "
            "\"shadow\" (not in upstreams:)");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: upstream, endpoint: x:1, cluster: "
                        "shadow}]}"),
            "test.yaml:1:92: routes[0].middlewares[0].fallbacks[0].endpoint: give either cluster "
            "or endpoint, not both");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: static, when: {status: [5x]}}]}"),
            "test.yaml:1:95: routes[0].middlewares[0].fallbacks[0].when.status: expected "
            "statuses (503) or classes (5xx), got \"5x\"");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: static, timeout_ms: 10}]}"),
            "test.yaml:1:92: routes[0].middlewares[0].fallbacks[0].timeout_ms: only for kind: "
            "upstream (cache_snapshot and static answer from memory at once: there is nothing "
            "to time out)");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: cache_snapshot, timeout_ms: 100}]}"),
            "test.yaml:1:100: routes[0].middlewares[0].fallbacks[0].timeout_ms: only for kind: "
            "upstream (cache_snapshot and static answer from memory at once: there is nothing "
            "to time out)");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: static, when: {before_handler: "
                        "true, status: [5xx]}}]}"),
            "test.yaml:1:103: routes[0].middlewares[0].fallbacks[0].when.before_handler: there is "
            "no outcome before the handler: only route_p99_above_ms and user_tier can go with it");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: static, when: {before_handler: "
                        "true}}]}"),
            "test.yaml:1:103: routes[0].middlewares[0].fallbacks[0].when.before_handler: needs "
            "route_p99_above_ms or user_tier (alone it would answer every request without the "
            "handler)");
  EXPECT_EQ(
      first_error("{type: fallback, fallbacks: [{kind: upstream, endpoint: \"127.0.0.1:1\", when: "
                  "{before_handler: true, route_p99_above_ms: 5}}]}"),
      "test.yaml:1:130: routes[0].middlewares[0].fallbacks[0].when.before_handler: only for "
      "kind: cache_snapshot or static (to call another upstream on a latency budget, use "
      "hedge:)");
  // A fixed endpoint is an implicit one-endpoint cluster, resolved at load as `upstreams:`
  // endpoints are (.invalid never resolves, RFC 6761).
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: upstream, endpoint: "
                        "\"nowhere.invalid:80\"}]}")
                .rfind("test.yaml:1:92: routes[0].middlewares[0].fallbacks[0].endpoint: cannot "
                       "resolve \"nowhere.invalid\": ",
                       0),
            0u);
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: upstream, endpoint: \"nohost\"}]}"),
            "test.yaml:1:92: routes[0].middlewares[0].fallbacks[0].endpoint: must be host:port, "
            "got \"nohost\"");
  EXPECT_EQ(first_error("{type: fallback, fallbacks: [{kind: cache_snapshot, body: x}]}"),
            "test.yaml:1:94: routes[0].middlewares[0].fallbacks[0].body: only for kind: static");
}

}  // namespace
}  // namespace sluice::testing
