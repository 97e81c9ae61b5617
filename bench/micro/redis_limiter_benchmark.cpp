// Decisions per second of the Redis limiter modes against the in-process limiter, with a
// throw-away redis-server on loopback (skipped when /usr/bin/redis-server is missing).
//
//   bench --benchmark_filter='Redis|Local'
#include <benchmark/benchmark.h>

#include <atomic>
#include <future>
#include <memory>

#include "../../tests/support/redis_test_server.hpp"
#include "resilience/local_rate_limiter.hpp"
#include "resilience/redis/redis_rate_limiter.hpp"

namespace {

using sluice::resilience::LocalRateLimiter;
using sluice::resilience::RateDecision;
using sluice::resilience::RateLimit;
using sluice::resilience::redis::RedisLimiterConfig;
using sluice::resilience::redis::RedisRateLimiter;
using sluice::testing::RedisTestServer;

// A limit no benchmark reaches, so every decision is the "allowed" path.
constexpr RateLimit kHuge{1e9, 1e9};

RedisTestServer* redis_server() {
  static std::unique_ptr<RedisTestServer> server = [] {
    if (!RedisTestServer::available()) return std::unique_ptr<RedisTestServer>();
    auto s = std::make_unique<RedisTestServer>();
    if (!s->start()) return std::unique_ptr<RedisTestServer>();
    return s;
  }();
  return server.get();
}

std::unique_ptr<RedisRateLimiter> make_limiter(RedisLimiterConfig::Mode mode) {
  RedisLimiterConfig c;
  c.port = redis_server()->port();
  c.mode = mode;
  c.command_timeout = std::chrono::milliseconds(500);
  return std::make_unique<RedisRateLimiter>(c);
}

RateDecision decide(RedisRateLimiter& limiter, const std::string& key) {
  if (auto d = limiter.try_decide(key, kHuge)) return *d;
  std::promise<RateDecision> p;
  limiter.decide_async(key, kHuge, [&p](RateDecision d) { p.set_value(d); });
  return p.get_future().get();
}

void BM_LocalLimiter(benchmark::State& state) {
  LocalRateLimiter limiter;
  for (auto _ : state)
    benchmark::DoNotOptimize(limiter.try_decide("bench", kHuge));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocalLimiter);

// One EVALSHA per decision, one decision at a time: the latency-bound figure.
void BM_RedisPerRequestSequential(benchmark::State& state) {
  if (redis_server() == nullptr) return state.SkipWithError("no redis-server");
  auto limiter = make_limiter(RedisLimiterConfig::Mode::kPerRequest);
  decide(*limiter, "bench-seq");  // connect outside the timing
  for (auto _ : state)
    benchmark::DoNotOptimize(decide(*limiter, "bench-seq"));
  state.SetItemsProcessed(state.iterations());
  if (limiter->stats().decisions_degraded > 0) state.SkipWithError("degraded decisions");
}
BENCHMARK(BM_RedisPerRequestSequential)->UseRealTime();

// One EVALSHA per decision, `range(0)` in flight, pipelined on the connection(s).
void BM_RedisPerRequestPipelined(benchmark::State& state) {
  if (redis_server() == nullptr) return state.SkipWithError("no redis-server");
  auto limiter = make_limiter(RedisLimiterConfig::Mode::kPerRequest);
  decide(*limiter, "bench-pipe");
  const int batch = static_cast<int>(state.range(0));
  for (auto _ : state) {
    std::atomic<int> left{batch};
    std::promise<void> all;
    for (int i = 0; i < batch; ++i) {
      limiter->decide_async("bench-pipe", kHuge, [&](RateDecision) {
        if (--left == 0) all.set_value();
      });
    }
    all.get_future().wait();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  if (limiter->stats().decisions_degraded > 0) state.SkipWithError("degraded decisions");
}
BENCHMARK(BM_RedisPerRequestPipelined)->Arg(64)->UseRealTime();

void BM_RedisLeased(benchmark::State& state) {
  if (redis_server() == nullptr) return state.SkipWithError("no redis-server");
  auto limiter = make_limiter(RedisLimiterConfig::Mode::kLeased);
  for (int i = 0; i < 1000; ++i)
    decide(*limiter, "bench-lease");  // let the lease size adapt
  const auto calls_before = limiter->stats().redis_calls_total;
  for (auto _ : state)
    benchmark::DoNotOptimize(decide(*limiter, "bench-lease"));
  state.SetItemsProcessed(state.iterations());
  const auto s = limiter->stats();
  state.counters["redis_calls_per_decision"] =
      static_cast<double>(s.redis_calls_total - calls_before) /
      static_cast<double>(state.iterations());
  if (s.decisions_degraded > 0) state.SkipWithError("degraded decisions");
}
BENCHMARK(BM_RedisLeased)->UseRealTime();

}  // namespace
