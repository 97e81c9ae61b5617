// The circuit_breaker middleware in a chain with a fake clock: opening on errors, 503 with
// Retry-After, half-open probing, cancelled probes, what counts as an error, header keys,
// metrics, state across reloads, and config errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/resilience_harness.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

std::string config(const std::string& breaker) {
  return R"(
routes:
  - name: api
    middlewares:
      - )" +
         breaker + R"(
    handler: { type: respond }
)";
}

const std::string kBreaker =
    "{type: circuit_breaker, name: cb, strategy: error_ratio, threshold: 0.5, "
    "min_request_amount: 4, stat_interval_ms: 1000, retry_timeout_ms: 5000}";

TEST(CircuitBreakerMiddleware, OpensOnErrorsAndRejectsWith503AndRetryAfter) {
  Harness h(config(kBreaker));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.status = 500;
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(h.get("api")->status(), 500);
  EXPECT_EQ(h.handler.calls, 4);
  auto rejected = h.get("api");
  EXPECT_EQ(rejected->status(), 503);
  EXPECT_EQ(rejected->header("Retry-After"), "5");
  auto body = nlohmann::json::parse(rejected->body());
  EXPECT_EQ(body["error"], "circuit_open");
  EXPECT_EQ(rejected->ex->detail(), "circuit_open");
  EXPECT_EQ(h.handler.calls, 4) << "the handler is not called while open";
  h.clock.advance(2500ms);
  EXPECT_EQ(h.get("api")->header("Retry-After"), "3");  // ceil(2.5 s)
  const auto metrics = h.metrics_text();
  EXPECT_NE(metrics.find("sluice_circuit_breaker_state{breaker=\"cb:api\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_circuit_breaker_rejected_total{breaker=\"cb:api\"} 2"),
            std::string::npos);
  EXPECT_NE(metrics.find("sluice_circuit_breaker_transitions_total{breaker=\"cb:api\",from="
                         "\"closed\",to=\"open\"} 1"),
            std::string::npos);
}

TEST(CircuitBreakerMiddleware, BelowMinRequestAmountNothingTrips) {
  Harness h(config(kBreaker));
  h.handler.status = 500;
  for (int i = 0; i < 3; ++i)
    h.get("api");
  EXPECT_EQ(h.get("api")->status(), 500) << "3 of 3 failed, but fewer than 4 requests";
  EXPECT_EQ(h.handler.calls, 4);
}

TEST(CircuitBreakerMiddleware, BelowThresholdStaysClosedAndTheWindowSlides) {
  Harness h(config(kBreaker));
  for (int i = 0; i < 6; ++i)
    h.get("api");
  h.handler.status = 500;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(h.get("api")->status(), 500);  // 3/9 errors
  h.clock.advance(1001ms);                   // the successes leave the window
  h.handler.status = 200;
  EXPECT_EQ(h.get("api")->status(), 200);
  h.handler.status = 500;
  for (int i = 0; i < 3; ++i)
    h.get("api");  // 3/4 errors in the new window: trips
  EXPECT_EQ(h.get("api")->status(), 503);
}

TEST(CircuitBreakerMiddleware, HalfOpenProbeClosesOrReopens) {
  Harness h(config(kBreaker));
  h.handler.status = 500;
  for (int i = 0; i < 4; ++i)
    h.get("api");
  ASSERT_EQ(h.get("api")->status(), 503);
  h.clock.advance(5001ms);
  // One probe at a time: while it hangs, others are rejected.
  h.handler.hold = true;
  auto probe = h.get("api");
  EXPECT_FALSE(probe->done);
  h.handler.hold = false;
  EXPECT_EQ(h.get("api")->status(), 503);
  // The probe fails: open again for another retry timeout.
  h.handler.status = 500;
  probe->ex->response().set_status(500);
  h.handler.held.back()(Decision::respond());
  probe->host->run_all();
  EXPECT_TRUE(probe->done);
  EXPECT_EQ(h.get("api")->status(), 503);
  h.clock.advance(5001ms);
  h.handler.status = 200;
  EXPECT_EQ(h.get("api")->status(), 200);  // the probe succeeds: closed
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(h.get("api")->status(), 200);
  EXPECT_NE(h.metrics_text().find("from=\"half_open\",to=\"closed\"} 1"), std::string::npos);
}

TEST(CircuitBreakerMiddleware, CancelledProbeReleasesItsSlot) {
  Harness h(config(kBreaker));
  h.handler.status = 500;
  for (int i = 0; i < 4; ++i)
    h.get("api");
  h.clock.advance(5001ms);
  h.handler.hold = true;
  auto probe = h.get("api");
  ExchangeDriver(*probe->ex).cancel();
  probe->host->run_all();
  EXPECT_TRUE(probe->done);
  EXPECT_EQ(probe->status(), 499);
  h.handler.hold = false;
  h.handler.status = 200;
  EXPECT_EQ(h.get("api")->status(), 200) << "a new probe is admitted";
}

TEST(CircuitBreakerMiddleware, ErrorOnChoosesWhatCounts) {
  Harness h(
      config("{type: circuit_breaker, name: cb, strategy: error_count, threshold: 2, "
             "min_request_amount: 1, error_on: {status_5xx: false, statuses: [429], timeout: true, "
             "upstream_connect_failure: false}}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.status = 500;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(h.get("api")->status(), 500);  // not errors here
  h.handler.status = 502;
  h.handler.detail = "upstream_unreachable";
  EXPECT_EQ(h.get("api")->status(), 502);
  h.handler.status = 429;
  h.handler.detail.clear();
  h.get("api");
  h.handler.status = 504;
  h.get("api");  // second error: trips
  EXPECT_EQ(h.get("api")->status(), 503);
}

TEST(CircuitBreakerMiddleware, SlowRequestRatioUsesTheClock) {
  Harness h(
      config("{type: circuit_breaker, name: cb, strategy: slow_request_ratio, threshold: 0.5, "
             "max_allowed_rt_ms: 100, min_request_amount: 2, stat_interval_ms: 10000}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.latency = 150ms;
  h.get("api");
  h.get("api");
  EXPECT_EQ(h.get("api")->status(), 503);
}

TEST(CircuitBreakerMiddleware, HeaderKeyKeepsOneBreakerPerValue) {
  Harness h(
      config("{type: circuit_breaker, name: cb, key: \"header:X-Dep\", strategy: error_count, "
             "threshold: 1, min_request_amount: 1}"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.status = 500;
  h.get("api", "/", {{"X-Dep", "a"}});
  h.handler.status = 200;
  EXPECT_EQ(h.get("api", "/", {{"X-Dep", "a"}})->status(), 503);
  EXPECT_EQ(h.get("api", "/", {{"X-Dep", "b"}})->status(), 200);
  EXPECT_NE(h.metrics_text().find("breaker=\"cb:a\"} 1"), std::string::npos);
}

TEST(CircuitBreakerMiddleware, StateSurvivesAReloadOfAnotherRoute) {
  Harness h(config(kBreaker));
  h.handler.status = 500;
  for (int i = 0; i < 4; ++i)
    h.get("api");
  auto errors = h.reload(config(kBreaker) + R"(  - name: other
    match: { prefix: /other }
    handler: { type: echo }
)");
  ASSERT_TRUE(errors.empty()) << errors[0];
  EXPECT_EQ(h.get("api")->status(), 503);
}

TEST(CircuitBreakerMiddleware, ConfigErrors) {
  auto first_error = [](const std::string& breaker) {
    Harness h(config(breaker));
    return h.errors.empty() ? std::string() : h.errors[0];
  };
  EXPECT_EQ(first_error("{type: circuit_breaker, strategy: error_ratio}"),
            "test.yaml:5:9: routes[0].middlewares[0].threshold: is required");
  EXPECT_EQ(first_error("{type: circuit_breaker, strategy: error_rate, threshold: 0.5}"),
            "test.yaml:5:43: routes[0].middlewares[0].strategy: unknown value \"error_rate\" "
            "(did you mean \"error_ratio\"?); expected one of: slow_request_ratio, error_ratio, "
            "error_count");
  EXPECT_EQ(first_error("{type: circuit_breaker, threshold: 1.5}"),
            "test.yaml:5:44: routes[0].middlewares[0].threshold: must be a ratio in [0, 1] for "
            "error_ratio, got 1.5");
  EXPECT_EQ(first_error("{type: circuit_breaker, strategy: slow_request_ratio, threshold: 0.5}"),
            "test.yaml:5:9: routes[0].middlewares[0].max_allowed_rt_ms: must be > 0ms for "
            "slow_request_ratio");
  EXPECT_EQ(first_error("{type: circuit_breaker, threshold: 0.5, key: cluster}"),
            "test.yaml:5:54: routes[0].middlewares[0].key: unknown key \"cluster\"; expected "
            "route, \"upstream:<cluster>\" or \"header:<Name>\"");
  EXPECT_EQ(first_error("{type: circuit_breaker, threshold: 0.5, error_on: {status5xx: true}}"),
            "test.yaml:5:60: routes[0].middlewares[0].error_on: unknown key \"status5xx\" (did you "
            "mean \"status_5xx\"?)");
}

}  // namespace
}  // namespace sluice::testing
