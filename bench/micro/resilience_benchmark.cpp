// Hot-path costs of the resilience mechanisms: breaker admission + completion, token bucket
// and keyed limiter decisions, uncontended and with two threads on one breaker / one key.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "resilience/circuit_breaker.hpp"
#include "resilience/concurrency_limiter.hpp"
#include "resilience/local_rate_limiter.hpp"
#include "resilience/token_bucket.hpp"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

CircuitBreakerConfig bench_breaker_config(uint32_t buckets) {
  CircuitBreakerConfig c;
  c.strategy = Strategy::kErrorRatio;
  c.threshold = 0.5;
  c.stat_interval = milliseconds(1000);
  c.stat_sliding_window_bucket_count = buckets;
  return c;
}

// One breaker shared by all benchmark threads, so ->Threads(2) measures contention.
CircuitBreaker& shared_breaker(uint32_t buckets) {
  static CircuitBreaker one("bench1", bench_breaker_config(1));
  static CircuitBreaker ten("bench10", bench_breaker_config(10));
  return buckets == 1 ? one : ten;
}

// The baseline every decision pays once: one read of the steady clock through sluice::Clock.
void BM_ClockNow(benchmark::State& state) {
  const Clock& clock = system_steady_clock();
  for (auto _ : state)
    benchmark::DoNotOptimize(clock.now());
}
BENCHMARK(BM_ClockNow);

void BM_BreakerAcquireComplete(benchmark::State& state) {
  CircuitBreaker& breaker = shared_breaker(uint32_t(state.range(0)));
  for (auto _ : state) {
    const Permit p = breaker.try_acquire();
    breaker.on_complete(p, milliseconds(3), false);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_BreakerAcquireComplete)->Arg(1)->Arg(10)->Threads(1)->Threads(2);

// As a middleware calls it: the end time it measured rt with is passed in, no second clock read.
void BM_BreakerAcquireCompleteAt(benchmark::State& state) {
  CircuitBreaker& breaker = shared_breaker(uint32_t(state.range(0)));
  const SteadyTime now = system_steady_clock().now();
  for (auto _ : state) {
    const Permit p = breaker.try_acquire();
    breaker.on_complete(p, milliseconds(3), false, now);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_BreakerAcquireCompleteAt)->Arg(1)->Arg(10)->Threads(1)->Threads(2);

void BM_BreakerAcquireOnly(benchmark::State& state) {
  CircuitBreaker& breaker = shared_breaker(1);
  for (auto _ : state)
    benchmark::DoNotOptimize(breaker.try_acquire());
}
BENCHMARK(BM_BreakerAcquireOnly)->Threads(1)->Threads(2);

// A bucket large enough to keep admitting, so the CAS (write) path is what is measured.
TokenBucket& shared_bucket() {
  static TokenBucket bucket({.rate_per_second = 1e12, .burst = 1e9});
  return bucket;
}

void BM_TokenBucketDecision(benchmark::State& state) {
  TokenBucket& bucket = shared_bucket();
  const Clock& clock = system_steady_clock();
  for (auto _ : state)
    benchmark::DoNotOptimize(bucket.try_acquire(clock.now()));
}
BENCHMARK(BM_TokenBucketDecision)->Threads(1)->Threads(2);

LocalRateLimiter& shared_limiter() {
  static LocalRateLimiter limiter(system_steady_clock(), 100000);
  return limiter;
}

void BM_LocalLimiterOneKey(benchmark::State& state) {
  LocalRateLimiter& limiter = shared_limiter();
  const RateLimit limit{.rate_per_second = 1e12, .burst = 1e9};
  const std::string key = "ip:10.0.0.1";
  for (auto _ : state)
    benchmark::DoNotOptimize(limiter.try_decide(key, limit));
}
BENCHMARK(BM_LocalLimiterOneKey)->Threads(1)->Threads(2);

// 10k live keys, visited in turn: hash map and LRU costs with a cold-ish working set.
void BM_LocalLimiterManyKeys(benchmark::State& state) {
  LocalRateLimiter& limiter = shared_limiter();
  const RateLimit limit{.rate_per_second = 1e12, .burst = 1e9};
  std::vector<std::string> keys;
  for (int i = 0; i < 10000; ++i)
    keys.push_back("ip:10.1." + std::to_string(i));
  size_t i = size_t(state.thread_index()) * 4999;
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter.try_decide(keys[i], limit));
    if (++i == keys.size()) i = 0;
  }
}
BENCHMARK(BM_LocalLimiterManyKeys)->Threads(1)->Threads(2);

void BM_ConcurrencyLimiterAcquireRelease(benchmark::State& state) {
  static ConcurrencyLimiter limiter(1000, 100);
  for (auto _ : state) {
    if (limiter.try_acquire()) limiter.release();
  }
}
BENCHMARK(BM_ConcurrencyLimiterAcquireRelease)->Threads(1)->Threads(2);

}  // namespace
}  // namespace sluice::resilience
