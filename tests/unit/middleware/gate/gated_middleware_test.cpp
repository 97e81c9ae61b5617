// Rollout selection and the guard that lets a failing middleware step aside (middleware/gate).
#include "middleware/gate/gated_middleware.hpp"

#include <gtest/gtest.h>

#include "sluice/chain.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"

namespace sluice::middleware {
namespace {

using testing::ManualHost;

TEST(Rollout, APercentageOfKeysStableAndSeeded) {
  int in = 0, moved = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "user-" + std::to_string(i);
    const bool a = Rollout::position(1, key) < 1000;  // 10 %
    EXPECT_EQ(a, Rollout::position(1, key) < 1000) << "the same key, the same answer";
    in += a;
    moved += a != (Rollout::position(2, key) < 1000);
  }
  EXPECT_NEAR(in, 2000, 200);
  EXPECT_GT(moved, 2000) << "another seed picks another slice";
}

// A middleware that depends on something that can be down: it then answers 503 itself.
class Dependent final : public Middleware {
 public:
  std::string_view name() const override { return "auth"; }
  Decision pre_handle(Exchange& ex) override {
    ++pre;
    if (down) return ex.answer_error(503, "auth_unavailable", "the auth service is down");
    if (deny) return ex.answer_error(401, "unauthorized", "no");
    return Decision::next();
  }
  void post_handle(Exchange&, std::chrono::nanoseconds) override { ++post; }
  bool down = false, deny = false;
  int pre = 0, post = 0;
};

class Ok final : public Handler {
 public:
  std::string_view kind() const override { return "ok"; }
  Decision handle(Exchange& ex) override { return ex.answer(200, "text/plain", "ok"); }
};

struct Fixture {
  FakeClock clock;
  std::shared_ptr<Dependent> auth = std::make_shared<Dependent>();
  Chain chain{"api"};
  Ok handler;
  std::shared_ptr<ManualHost> host = std::make_shared<ManualHost>();

  explicit Fixture(bool skip, std::unique_ptr<Rollout> rollout = nullptr) {
    auto guard = std::make_unique<Guard>();
    guard->skip_when_open = skip;
    guard->breaker.strategy = resilience::Strategy::kErrorCount;
    guard->breaker.threshold = 2;
    guard->breaker.min_request_amount = 1;
    guard->breaker.retry_timeout = std::chrono::milliseconds(1000);
    EXPECT_TRUE(chain
                    .use(std::make_shared<GatedMiddleware>(auth, "api", std::move(rollout),
                                                           std::move(guard), GateStats{}, clock))
                    .ok());
  }
  // Runs one request; returns its status and what was skipped.
  std::pair<int, std::string> request(const std::string& header = "") {
    auto& ex = host->exchange("GET", "/");
    if (!header.empty()) host->request().set("X-Canary", header);
    auto lease = chain.acquire();
    ExchangeDriver(ex).run(*lease, handler, [] {});
    host->run_all();
    return {ex.response().status(), std::string(ex.context().skipped())};
  }
};

TEST(Guard, AFailingMiddlewareStepsAsideWhileItsBreakerIsOpenAndComesBack) {
  Fixture f(/*skip=*/true);
  f.auth->down = true;
  EXPECT_EQ(f.request().first, 503);
  EXPECT_EQ(f.request().first, 503);  // 2 errors: open
  const int pre_before = f.auth->pre, post_before = f.auth->post;
  auto [status, skipped] = f.request();
  EXPECT_EQ(status, 200) << "auth stepped aside; the handler answered";
  EXPECT_EQ(skipped, "auth:breaker_open");
  EXPECT_EQ(f.auth->pre, pre_before) << "its pre_handle is not called";
  EXPECT_EQ(f.auth->post, post_before) << "nor its post_handle";

  f.auth->down = false;
  f.auth->deny = true;  // back, and doing its job: a 4xx is not its failure
  f.clock.advance(std::chrono::milliseconds(1001));
  auto probe = f.request();
  EXPECT_EQ(probe.first, 401) << "half-open: the probe runs the middleware";
  EXPECT_EQ(probe.second, "");
  f.auth->deny = false;
  EXPECT_EQ(f.request().first, 200);
  EXPECT_EQ(f.request().second, "") << "closed again";
}

TEST(Guard, OnOpenAnswerGives503WithRetryAfter) {
  Fixture f(/*skip=*/false);
  f.auth->down = true;
  f.request();
  f.request();
  f.auth->down = false;
  auto& ex = f.host->exchange("GET", "/");
  auto lease = f.chain.acquire();
  ExchangeDriver(ex).run(*lease, f.handler, [] {});
  f.host->run_all();
  EXPECT_EQ(ex.response().status(), 503);
  EXPECT_EQ(ex.detail(), "circuit_open");
  EXPECT_EQ(ex.response().header("Retry-After"), "1");
}

TEST(Rollout, OutsideTheRolloutTheMiddlewareStepsAsideAndAHeaderForcesItIn) {
  RolloutRule rule;
  rule.match_header = "X-Canary";
  rule.match_value = "1";
  Fixture f(/*skip=*/true, std::make_unique<Rollout>(rule, 0.0));
  f.auth->deny = true;
  auto out = f.request();
  EXPECT_EQ(out.first, 200);
  EXPECT_EQ(out.second, "auth:rollout");
  EXPECT_EQ(f.request("1").first, 401) << "the header brings the request in";
  EXPECT_EQ(f.request("2").second, "auth:rollout") << "another value does not";
}

}  // namespace
}  // namespace sluice::middleware
