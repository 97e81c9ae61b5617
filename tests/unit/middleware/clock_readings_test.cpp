// timeout, rate_limit and circuit_breaker take "now" from the chain's reading of their hook's
// start (Exchange::hook_time) instead of reading the clock. These fail if the shared reading is
// the wrong one: the request's start, another hook's, or the end of the chain. Time spent by a
// middleware before them (`advance_clock`, registered here) must count as it does with a read
// of their own; the chain and the middlewares both read the harness's FakeClock.
#include <gtest/gtest.h>

#include "sluice/registry.hpp"
#include "sluice/settings.hpp"
#include "support/resilience_harness.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

FakeClock* advancing = nullptr;  // the running test's harness clock

// Spends fake time: `pre_ms` in pre_handle (or the request's X-Advance-Ms), `post_ms` in
// post_handle.
class AdvanceClock final : public Middleware {
 public:
  AdvanceClock(std::string name, Nanos pre, Nanos post)
      : name_(std::move(name)), pre_(pre), post_(post) {}
  std::string_view name() const override { return name_; }
  Decision pre_handle(Exchange& ex) override {
    const std::string_view asked = ex.request().header("X-Advance-Ms");
    advancing->advance(asked.empty() ? pre_
                                     : std::chrono::milliseconds(std::stoi(std::string(asked))));
    return Decision::next();
  }
  void post_handle(Exchange&, Nanos) override { advancing->advance(post_); }

 private:
  std::string name_;
  Nanos pre_;
  Nanos post_;
};

const MiddlewareRegistrar registrar(
    "advance_clock", [](const MiddlewareSpec& spec, Settings& s) -> std::shared_ptr<Middleware> {
      return std::make_shared<AdvanceClock>(spec.name, s.millis("pre_ms", 0ms),
                                            s.millis("post_ms", 0ms));
    });

std::string route_yaml(const std::string& middlewares) {
  return "routes:\n  - name: api\n    middlewares: [" + middlewares +
         "]\n    handler: { type: respond }\n";
}

struct Clocked : Harness {
  explicit Clocked(const std::string& middlewares) : Harness(route_yaml(middlewares)) {
    advancing = &clock;
  }
};

TEST(ClockReadings, TheChainTimesHooksInTheHarness) {
  Clocked h("{type: advance_clock, pre_ms: 30, post_ms: 7}, {type: timeout, timeout_ms: 1000}");
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.latency = 100ms;
  auto call = h.get("api");
  ASSERT_TRUE(call->ex->chain()->times_middlewares()) << "else nothing here is shared";
  EXPECT_EQ(call->ex->middleware_time(0), 37ms);
  EXPECT_EQ(call->ex->middleware_time(1), 0ms);
}

TEST(ClockReadings, TimeoutCountsFromEnteringTheMiddleware) {
  Clocked h(
      "{type: advance_clock, name: before, pre_ms: 30}, {type: timeout, timeout_ms: 1000}, "
      "{type: advance_clock, name: after, pre_ms: 5}");
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  const SteadyTime start = h.clock.now();
  auto call = h.get("api");
  ASSERT_TRUE(call->done);
  ASSERT_TRUE(call->ex->context().deadline().has_value());
  EXPECT_EQ(*call->ex->context().deadline(), start + 30ms + 1000ms)
      << "not from the request's start, nor from the next hook's";
}

TEST(ClockReadings, RateLimitRefillsUpToItsOwnHooksStart) {
  // One token a second. The second request starts when the first did (no time passes between
  // them) but spends 1 s before the limiter: a full token has come back by then.
  Clocked h(
      "{type: advance_clock}, {type: rate_limit, name: rl, limits: [{name: per_ip, key: "
      "client_ip, rate: 1, burst: 1}]}");
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  EXPECT_EQ(h.get("api")->status(), 200);
  EXPECT_EQ(h.get("api", "/", {{"X-Advance-Ms", "1000"}})->status(), 200)
      << "decided as of the request's start, the token would not be back";
  EXPECT_EQ(h.get("api", "/", {{"X-Advance-Ms", "999"}})->status(), 429);
}

TEST(ClockReadings, BreakerResponseTimeIsBetweenItsOwnHooks) {
  // Slow above 100 ms. The 150 ms spent before the breaker's pre_handle and after its
  // post_handle are not its response time; the handler's 150 ms are.
  const std::string breaker =
      "{type: circuit_breaker, name: cb, strategy: slow_request_ratio, threshold: 0.5, "
      "max_allowed_rt_ms: 100, min_request_amount: 2, stat_interval_ms: 10000}";
  Clocked h("{type: advance_clock, pre_ms: 150, post_ms: 150}, " + breaker);
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(h.get("api")->status(), 200) << "request " << i << ": outside time counted";
  h.handler.latency = 150ms;
  for (int i = 0; i < 5; ++i)  // 5 slow of 9: above the threshold
    h.get("api");
  EXPECT_EQ(h.get("api")->status(), 503) << "the handler's time is the response time";
}

}  // namespace
}  // namespace sluice::testing
