// Per-request cost of the resilience middlewares in a chain (circuit_breaker + rate_limit with
// the local backend), run through Exchange on a ManualHost, against the same chain without them.
#include <benchmark/benchmark.h>

#include "middleware/circuit_breaker/circuit_breaker_middleware.hpp"
#include "middleware/rate_limit/rate_limit_middleware.hpp"
#include "resilience/local_rate_limiter.hpp"
#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"

namespace {
using namespace sluice;

class Ok final : public Handler {
 public:
  std::string_view kind() const override { return "ok"; }
  Decision handle(Exchange& ex) override {
    ex.response().set_status(200);
    return Decision::respond();
  }
};

std::shared_ptr<Middleware> breaker() {
  middleware::CircuitBreakerMiddlewareConfig c;
  c.breaker.threshold = 0.5;
  c.breaker.stat_interval = std::chrono::milliseconds(1000);
  c.breaker.stat_sliding_window_bucket_count = 10;
  c.identity = "bench";
  return std::make_shared<middleware::CircuitBreakerMiddleware>(
      "cb", "api", c, std::make_shared<middleware::BreakerRegistry>(nullptr),
      system_steady_clock());
}

std::shared_ptr<Middleware> limiter(int limits, bool headers = true) {
  middleware::RateLimitConfig c;
  c.headers = headers;
  for (int i = 0; i < limits; ++i) {
    middleware::LimitRule rule;
    rule.name = "l" + std::to_string(i);
    rule.limit = {.rate_per_second = 1e12, .burst = 1e12};  // never denies: measures the path
    c.limits.push_back(rule);
  }
  return std::make_shared<middleware::RateLimitMiddleware>(
      "rl", std::move(c), std::make_shared<resilience::LocalRateLimiter>());
}

// range(0): 0 = empty chain, 1 = breaker, 2 = limiter (one limit, key client_ip),
// 3 = breaker + limiter, 4 = breaker + limiter without RateLimit-* headers on allowed answers
// (the four Beast header insertions are most of the limiter's cost).
void BM_ResilienceChain(benchmark::State& state) {
  Chain chain("api");
  const auto mode = state.range(0);
  if (mode == 1 || mode == 3) chain.use(breaker());
  if (mode == 2 || mode == 3) chain.use(limiter(1));
  if (mode == 4) {
    chain.use(breaker());
    chain.use(limiter(1, false));
  }
  auto host = std::make_shared<testing::ManualHost>();
  Exchange& ex = host->exchange("GET", "/");
  RouteInfo route{"api"};
  Ok handler;
  int done = 0;
  for (auto _ : state) {
    ExchangeDriver(ex).reset(std::chrono::steady_clock::now(),
                             std::chrono::system_clock::time_point{});
    ExchangeDriver(ex).set_route(&route);
    ex.context().set_client_ip("10.0.0.1");
    auto lease = chain.acquire();
    ExchangeDriver(ex).run(*lease, handler, [&done] { ++done; });
  }
  benchmark::DoNotOptimize(done);
}
BENCHMARK(BM_ResilienceChain)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Arg(4);

// Two threads, one shared breaker + limiter chain and one rate-limit key.
void BM_ResilienceChainContended(benchmark::State& state) {
  static Chain* chain = [] {
    auto* c = new Chain("api");
    c->use(breaker());
    c->use(limiter(1));
    return c;
  }();
  auto host = std::make_shared<testing::ManualHost>();
  Exchange& ex = host->exchange("GET", "/");
  RouteInfo route{"api"};
  Ok handler;
  int done = 0;
  for (auto _ : state) {
    ExchangeDriver(ex).reset(std::chrono::steady_clock::now(),
                             std::chrono::system_clock::time_point{});
    ExchangeDriver(ex).set_route(&route);
    ex.context().set_client_ip("10.0.0.1");
    auto lease = chain->acquire();
    ExchangeDriver(ex).run(*lease, handler, [&done] { ++done; });
  }
  benchmark::DoNotOptimize(done);
}
BENCHMARK(BM_ResilienceChainContended)->Threads(2);

}  // namespace
