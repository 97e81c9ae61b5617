// The concurrency_limit middleware on ManualHosts: rejections when full, the wait queue with
// its timeout, hand-over on release, cancellation, groups, metrics and config errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/resilience_harness.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

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

void finish(Harness& h, Call& call, std::size_t held_index) {
  h.handler.held[held_index](Decision::respond());
  call.host->run_all();
}

TEST(ConcurrencyLimitMiddleware, RejectsBeyondMaxInFlightAndReleasesInPost) {
  Harness h(config("{type: concurrency_limit, name: cl, max_in_flight: 2, reject_status: 429}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.hold = true;
  auto a = h.get("api");
  auto b = h.get("api");
  auto c = h.get("api");
  EXPECT_TRUE(c->done);
  EXPECT_EQ(c->status(), 429);
  EXPECT_EQ(nlohmann::json::parse(c->body())["error"], "concurrency_limited");
  EXPECT_EQ(c->ex->detail(), "concurrency_limited");
  EXPECT_NE(
      h.metrics_text().find("sluice_concurrency_limit_in_flight{limiter=\"cl\",route=\"api\"} 2"),
      std::string::npos);
  a->ex->response().set_status(200);
  finish(h, *a, 0);
  EXPECT_TRUE(a->done);
  auto d = h.get("api");
  EXPECT_FALSE(d->done) << "the released slot is free again";
  const auto m = h.metrics_text();
  EXPECT_NE(m.find("sluice_concurrency_limit_rejected_total{limiter=\"cl\",reason=\"full\",route="
                   "\"api\"} 1"),
            std::string::npos)
      << m;
}

TEST(ConcurrencyLimitMiddleware, QueuedRequestGetsTheNextSlot) {
  Harness h(config("{type: concurrency_limit, max_in_flight: 1, max_queue: 1, max_wait_ms: 100}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.hold = true;
  auto a = h.get("api");
  auto b = h.get("api");  // queued
  EXPECT_FALSE(b->done);
  EXPECT_EQ(h.handler.calls, 1);
  auto c = h.get("api");  // queue full
  EXPECT_EQ(c->status(), 503);
  finish(h, *a, 0);
  b->host->run_all();
  EXPECT_EQ(h.handler.calls, 2) << "b was handed a's slot";
  b->host->advance(200ms);  // its timer is harmless now
  EXPECT_FALSE(b->done);
  finish(h, *b, 1);
  EXPECT_TRUE(b->done);
  EXPECT_EQ(b->status(), 200);
}

TEST(ConcurrencyLimitMiddleware, QueueTimeoutAnswers503) {
  Harness h(
      config("{type: concurrency_limit, name: cl, max_in_flight: 1, max_queue: 4, "
             "max_wait_ms: 100}"));
  h.handler.hold = true;
  auto a = h.get("api");
  auto b = h.get("api");
  b->host->advance(99ms);
  EXPECT_FALSE(b->done);
  b->host->advance(1ms);
  EXPECT_TRUE(b->done);
  EXPECT_EQ(b->status(), 503);
  EXPECT_NE(nlohmann::json::parse(b->body())["message"].get<std::string>().find("100 ms"),
            std::string::npos);
  EXPECT_NE(h.metrics_text().find("reason=\"timeout\",route=\"api\"} 1"), std::string::npos);
  finish(h, *a, 0);
  h.handler.hold = false;
  EXPECT_EQ(h.get("api")->status(), 200) << "the timed-out waiter holds no slot";
}

TEST(ConcurrencyLimitMiddleware, CancelledWaiterLeavesTheQueue) {
  Harness h(config("{type: concurrency_limit, max_in_flight: 1, max_queue: 1, max_wait_ms: 100}"));
  h.handler.hold = true;
  auto a = h.get("api");
  auto b = h.get("api");
  ExchangeDriver(*b->ex).cancel();
  b->host->run_all();
  EXPECT_TRUE(b->done);
  EXPECT_EQ(b->status(), 499);
  auto c = h.get("api");  // the queue has room again
  EXPECT_FALSE(c->done);
  finish(h, *a, 0);
  c->host->run_all();
  EXPECT_EQ(h.handler.calls, 2);
}

TEST(ConcurrencyLimitMiddleware, GroupIsSharedAcrossRoutes) {
  Harness h(R"(
routes:
  - name: a
    match: { prefix: /a }
    middlewares: [ { type: concurrency_limit, group: global, max_in_flight: 1 } ]
    handler: { type: respond }
  - name: b
    middlewares: [ { type: concurrency_limit, group: global, max_in_flight: 1 } ]
    handler: { type: respond }
)");
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.hold = true;
  auto a = h.get("a");
  EXPECT_EQ(h.get("b")->status(), 503);
}

TEST(ConcurrencyLimitMiddleware, KeyedLimitersAreBounded) {
  Harness h(
      config("{type: concurrency_limit, max_in_flight: 1, key: \"header:X-Tenant\", "
             "max_keys: 1}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.hold = true;
  auto a = h.get("api", "/", {{"X-Tenant", "a"}});
  auto b = h.get("api", "/", {{"X-Tenant", "b"}});
  EXPECT_EQ(b->status(), 503) << "tenant a's limiter is busy: no room for b's";
  finish(h, *a, 0);
  auto b2 = h.get("api", "/", {{"X-Tenant", "b"}});
  EXPECT_FALSE(b2->done) << "a's idle limiter made room";
}

TEST(ConcurrencyLimitMiddleware, ConfigErrors) {
  auto first_error = [](const std::string& limiter) {
    Harness h(config(limiter));
    return h.errors.empty() ? std::string() : h.errors[0];
  };
  EXPECT_EQ(first_error("{type: concurrency_limit}"),
            "test.yaml:5:9: routes[0].middlewares[0].max_in_flight: is required");
  EXPECT_EQ(first_error("{type: concurrency_limit, max_in_flight: 1, reject_status: 500}"),
            "test.yaml:5:68: routes[0].middlewares[0].reject_status: must be 503 or 429");
  EXPECT_EQ(first_error("{type: concurrency_limit, max_in_flight: 0}"),
            "test.yaml:5:50: routes[0].middlewares[0].max_in_flight: must be between 1 and "
            "1000000");
}

}  // namespace
}  // namespace sluice::testing
