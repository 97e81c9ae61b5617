// RedisRateLimiter against a real redis-server: shared quotas, both modes, and Redis failing.
#include <gtest/gtest.h>

#include "support/required_tool.hpp"

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "resilience/redis/redis_rate_limiter.hpp"
#include "support/cpu_waits.hpp"
#include "support/redis_test_server.hpp"

namespace sluice::resilience::redis {
namespace {

using sluice::testing::RedisTestServer;
using namespace std::chrono_literals;
using Mode = RedisLimiterConfig::Mode;
using Policy = RedisLimiterConfig::FailurePolicy;
using SteadyClock = std::chrono::steady_clock;

struct Timed {
  RateDecision decision;
  SteadyClock::duration took;
  SteadyClock::duration waited{};  // of `took`, how long this thread waited for a CPU
};

// One decision the way the middleware takes it: at once if possible, else asynchronously.
// Fails the test instead of hanging when `done` never comes.
Timed decide(RedisRateLimiter& limiter, const std::string& key, RateLimit limit) {
  const auto waited_before = sluice::testing::this_thread_run_queue_wait();
  const auto start = SteadyClock::now();
  if (auto d = limiter.try_decide(key, limit))
    return {*d, SteadyClock::now() - start,
            sluice::testing::this_thread_run_queue_wait() - waited_before};
  auto p = std::make_shared<std::promise<RateDecision>>();
  auto f = p->get_future();
  limiter.decide_async(key, limit, [p](RateDecision d) { p->set_value(d); });
  if (f.wait_for(3s) != std::future_status::ready) {
    ADD_FAILURE() << "decision hung";
    return {RateDecision{}, 3s};
  }
  return {f.get(), SteadyClock::now() - start};
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds within) {
  const auto deadline = SteadyClock::now() + within;
  while (SteadyClock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class RedisLimiterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
    ASSERT_TRUE(redis_.start());
  }
  RedisLimiterConfig config(Mode mode = Mode::kPerRequest, Policy policy = Policy::kFailClosed) {
    RedisLimiterConfig c;
    c.port = redis_.port();
    c.mode = mode;
    c.on_failure = policy;
    c.command_timeout = 50ms;
    c.probe_backoff_min = 50ms;
    c.probe_backoff_max = 200ms;
    c.reconnect_backoff_min = 20ms;
    c.reconnect_backoff_max = 200ms;
    return c;
  }
  // For the tests that expect no degraded decision (shared quotas, a flushed script): a command
  // timeout far above how late a starved machine schedules Redis or the limiter's I/O thread.
  // With 50 ms, 30 repeats of the two quota tests beside `stress-ng --cpu 2` failed 8 times, each
  // on a degraded decision (where the reason was printed: a timed-out command), and the script
  // test's first decision was denied once in 20 suite runs (docs/RELIABILITY.md); the timeouts
  // have tests of their own.
  RedisLimiterConfig patient_config(Mode mode = Mode::kPerRequest) {
    auto c = config(mode);
    c.command_timeout = 2s;
    return c;
  }
  RedisTestServer redis_;
};

TEST(RedisLimiterConfigTest, ValidateNamesTheField) {
  RedisLimiterConfig c;
  EXPECT_EQ(c.validate(), "");
  c.command_timeout = 0ms;
  EXPECT_NE(c.validate().find("redis.command_timeout"), std::string::npos) << c.validate();
  c = {};
  c.port = 70000;
  EXPECT_NE(c.validate().find("redis.port"), std::string::npos);
  c = {};
  c.key_prefix = "a{b}";
  EXPECT_NE(c.validate().find("redis.key_prefix"), std::string::npos);
  c = {};
  c.expected_instances = 0;
  EXPECT_NE(c.validate().find("redis.expected_instances"), std::string::npos);
  c = {};
  c.username = "bob";
  EXPECT_NE(c.validate().find("redis.password"), std::string::npos);
  EXPECT_THROW(RedisRateLimiter{c}, std::invalid_argument);
}

TEST_F(RedisLimiterTest, PerRequestBurstThenDenyOnAHashTaggedKey) {
  RedisRateLimiter limiter(config());
  const RateLimit limit{1, 5};
  EXPECT_FALSE(limiter.try_decide("user:1", limit).has_value());  // needs Redis
  for (int i = 0; i < 5; ++i) {
    auto d = decide(limiter, "user:1", limit).decision;
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_FALSE(d.degraded);
    EXPECT_EQ(d.remaining, 4 - i);
    EXPECT_EQ(d.limit, 5);
  }
  auto denied = decide(limiter, "user:1", limit).decision;
  EXPECT_FALSE(denied.allowed);
  EXPECT_GT(denied.retry_after, 900ms);
  EXPECT_LE(denied.retry_after, 1000ms);
  EXPECT_EQ(redis_.command({"EXISTS", "{sluice:rl:user:1}"}), "1");
  const auto s = limiter.stats();
  EXPECT_EQ(s.decisions_total, 6u);
  EXPECT_GE(s.redis_calls_total, 6u);
  EXPECT_TRUE(s.backend_up);
  EXPECT_GE(s.rtt_count, 6u);
}

TEST_F(RedisLimiterTest, InvalidLimitDeniesInsteadOfAllowingAll) {
  RedisRateLimiter limiter(config());
  auto d = decide(limiter, "k", RateLimit{0, 0}).decision;
  EXPECT_FALSE(d.allowed);
}

struct RunResult {
  long long admitted = 0;
  long long decisions = 0;
  double elapsed = 0;  // seconds
  // What an exact token bucket admits when asked at the moments the decisions were answered:
  // the quota the demand actually allowed (a thread starved for a while asks for less).
  long long ideal = 0;
};

// An exact token bucket (full at `start`) asked at each of `at` (sorted): how many it admits.
long long ideal_admissions(std::vector<SteadyClock::duration> at, RateLimit limit) {
  std::sort(at.begin(), at.end());
  double tokens = limit.burst;
  SteadyClock::duration last{0};
  long long admitted = 0;
  for (const auto t : at) {
    tokens =
        std::min<double>(limit.burst, tokens + limit.rate_per_second *
                                                   std::chrono::duration<double>(t - last).count());
    last = t;
    if (tokens >= 1) {
      tokens -= 1;
      ++admitted;
    }
  }
  return admitted;
}

// `instances` limiters share one key; each is driven by its own thread at `per_instance_rate`.
RunResult run_shared(std::vector<std::unique_ptr<RedisRateLimiter>>& limiters, RateLimit limit,
                     double per_instance_rate, std::chrono::milliseconds duration) {
  std::atomic<long long> admitted{0}, decisions{0};
  // The quota is judged over the window in which decisions were asked for (start to the last
  // answer), not until the threads joined: on a busy machine the join can come much later and
  // would inflate the quota the admitted count is compared with.
  std::mutex answers_mutex;
  std::vector<SteadyClock::duration> answers;  // when each decision was answered, from start
  const auto start = SteadyClock::now();
  std::vector<std::thread> threads;
  for (auto& l : limiters) {
    threads.emplace_back([&, limiter = l.get()] {
      const auto period = std::chrono::duration_cast<SteadyClock::duration>(
          std::chrono::duration<double>(1.0 / per_instance_rate));
      auto next = start;
      std::vector<SteadyClock::duration> mine;
      while (next < start + duration) {
        auto d = decide(*limiter, "shared", limit).decision;
        if (d.allowed) ++admitted;
        ++decisions;
        mine.push_back(SteadyClock::now() - start);
        next += period;
        std::this_thread::sleep_until(next);
      }
      std::lock_guard lock(answers_mutex);
      answers.insert(answers.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads)
    t.join();
  const auto last = answers.empty() ? SteadyClock::duration{0}
                                    : *std::max_element(answers.begin(), answers.end());
  return {admitted.load(), decisions.load(), std::chrono::duration<double>(last).count(),
          ideal_admissions(std::move(answers), limit)};
}

// Over-admission is the safety property and is checked exactly, against the rate over the whole
// window. Under-admission is judged against an exact bucket asked at the same moments, with
// `tolerance`: a Redis reply or a lease refill waits for threads a loaded 2-core machine
// schedules late (leases then expire unused). Judged against the rate over the whole window
// instead, a run under ThreadSanitizer failed at -36.8 %: one thread's decisions came late
// (3.11 s for a 1 s run) when the others had stopped asking, so the demand, not the limiter,
// was below the quota. The bound still catches a limiter that denies much of what it allows.
constexpr double kUnderAdmissionTolerance = 0.25;

void expect_within_quota(const RunResult& r, RateLimit limit, double tolerance) {
  const double quota = limit.burst + limit.rate_per_second * r.elapsed;
  EXPECT_LE(static_cast<double>(r.admitted), quota + 1) << "over-admission";
  EXPECT_GE(static_cast<double>(r.admitted), static_cast<double>(r.ideal) * (1 - tolerance))
      << "admitted " << r.admitted << " of the " << r.ideal << " an exact bucket admits";
  std::printf(
      "  admitted %lld of quota %.0f (%.2f%%), an exact bucket %lld (%.2f%%), %lld decisions "
      "in %.2fs\n",
      r.admitted, quota, 100.0 * (r.admitted - quota) / quota, r.ideal,
      100.0 * (r.admitted - r.ideal) / std::max<double>(1, r.ideal), r.decisions, r.elapsed);
}

TEST_F(RedisLimiterTest, PerRequestThreeInstancesShareOneQuota) {
  std::vector<std::unique_ptr<RedisRateLimiter>> limiters;
  for (int i = 0; i < 3; ++i)
    limiters.push_back(std::make_unique<RedisRateLimiter>(patient_config(Mode::kPerRequest)));
  const RateLimit limit{500, 50};
  auto r = run_shared(limiters, limit, 1000, 1000ms);
  expect_within_quota(r, limit, kUnderAdmissionTolerance);
  for (auto& l : limiters) {
    const auto st = l->stats();
    EXPECT_EQ(st.decisions_degraded, 0u)
        << "timeouts " << st.errors_timeout << ", connection errors " << st.errors_connection
        << ", script errors " << st.errors_script << ", last error: " << l->last_error();
  }
}

TEST_F(RedisLimiterTest, LeasedThreeInstancesShareOneQuotaWithFewRedisCalls) {
  std::vector<std::unique_ptr<RedisRateLimiter>> limiters;
  for (int i = 0; i < 3; ++i) {
    auto c = patient_config(Mode::kLeased);
    c.expected_instances = 3;
    limiters.push_back(std::make_unique<RedisRateLimiter>(c));
  }
  const RateLimit limit{1000, 100};
  auto r = run_shared(limiters, limit, 2000, 2000ms);
  expect_within_quota(r, limit, kUnderAdmissionTolerance);
  std::uint64_t calls = 0, decisions = 0, leased = 0;
  for (auto& l : limiters) {
    auto s = l->stats();
    calls += s.redis_calls_total;
    decisions += s.decisions_total;
    leased += s.decisions_leased;
    // Was 1 under a load average of ~20 with a 50 ms command timeout (a timeout): say why.
    EXPECT_EQ(s.decisions_degraded, 0u)
        << "timeouts " << s.errors_timeout << ", connection errors " << s.errors_connection
        << ", script errors " << s.errors_script << ", last error: " << l->last_error();
  }
  std::printf("  redis calls %llu for %llu decisions (%.2f%%), %.1f%% answered from leases\n",
              static_cast<unsigned long long>(calls), static_cast<unsigned long long>(decisions),
              100.0 * calls / decisions, 100.0 * leased / decisions);
  EXPECT_LE(static_cast<double>(calls), 0.05 * static_cast<double>(decisions));
}

TEST_F(RedisLimiterTest, LeasedAnswersAtOnceBelowTheLimit) {
  auto c = config(Mode::kLeased);
  RedisRateLimiter limiter(c);
  const RateLimit limit{100000, 100000};
  int immediate = 0;
  for (int i = 0; i < 2000; ++i) {
    if (auto d = limiter.try_decide("fast", limit)) {
      EXPECT_TRUE(d->allowed);
      ++immediate;
    } else {
      EXPECT_TRUE(decide(limiter, "fast", limit).decision.allowed);
    }
    if (i % 100 == 0) std::this_thread::sleep_for(1ms);
  }
  EXPECT_GT(immediate, 1900);
}

// Redis dies while decisions flow: no decision waits longer than the command timeout (plus
// scheduling slack), Redis is marked down, the policy applies, and a restart heals it all.
void killed_under_load(RedisTestServer& redis, RedisLimiterConfig c, Mode mode) {
  c.mode = mode;
  RedisRateLimiter limiter(c);
  const RateLimit limit{1000, 1000};
  std::atomic<bool> stop{false};
  std::atomic<long long> slowest_us{0};
  std::thread load([&] {
    while (!stop) {
      auto t = decide(limiter, "load", limit);
      const long long us = std::chrono::duration_cast<std::chrono::microseconds>(t.took).count();
      if (us > slowest_us) slowest_us = us;
      std::this_thread::sleep_for(200us);
    }
  });
  std::this_thread::sleep_for(150ms);
  redis.kill();
  EXPECT_TRUE(eventually([&] { return !limiter.backend_up(); }, 1000ms));
  std::this_thread::sleep_for(100ms);
  stop = true;
  load.join();
  // Nothing hangs: a decision waits for the command timeout at most, plus what a starved thread
  // waits to be scheduled. 100 ms of slack failed at 160 ms beside stress-ng (load average ~16,
  // docs/RELIABILITY.md); a hang (a decision waiting on a dead connection) lasts until decide()
  // gives up at 3 s.
  EXPECT_LT(slowest_us.load(), (c.command_timeout + 1000ms).count() * 1000);

  const RateLimit small{1, 4};
  int allowed = 0;
  for (int i = 0; i < 10; ++i) {
    auto t = decide(limiter, "after", small);
    EXPECT_TRUE(t.decision.degraded);
    // Redis known down: no waiting for a timeout. The policy answers on this thread, so what
    // it waited for a CPU meanwhile is not the limiter's.
    EXPECT_LT(t.took - t.waited, c.command_timeout);
    allowed += t.decision.allowed ? 1 : 0;
  }
  switch (c.on_failure) {
    case Policy::kFailOpen:
      EXPECT_EQ(allowed, 10);
      break;
    case Policy::kFailClosed:
      EXPECT_EQ(allowed, 0);
      break;
    case Policy::kLocal:
      EXPECT_EQ(allowed, 2);  // burst 4 over expected_instances 2
      break;
  }
  EXPECT_GT(limiter.stats().errors_connection + limiter.stats().errors_timeout, 0u);

  ASSERT_TRUE(redis.start());  // same port, empty script cache
  EXPECT_TRUE(eventually([&] { return limiter.backend_up(); }, 3000ms)) << limiter.last_error();
  auto healed = decide(limiter, "healed", small).decision;
  EXPECT_FALSE(healed.degraded);
  EXPECT_TRUE(healed.allowed);
  EXPECT_GE(limiter.stats().script_loads_total, 1u);
}

TEST_F(RedisLimiterTest, KilledUnderLoadFailOpen) {
  killed_under_load(redis_, config(Mode::kPerRequest, Policy::kFailOpen), Mode::kPerRequest);
}

TEST_F(RedisLimiterTest, KilledUnderLoadFailClosed) {
  killed_under_load(redis_, config(Mode::kPerRequest, Policy::kFailClosed), Mode::kPerRequest);
}

TEST_F(RedisLimiterTest, KilledUnderLoadLocalLeased) {
  auto c = config(Mode::kLeased, Policy::kLocal);
  c.expected_instances = 2;
  killed_under_load(redis_, c, Mode::kLeased);
}

TEST_F(RedisLimiterTest, ScriptFlushIsHealedByReloadAndRetry) {
  RedisRateLimiter limiter(patient_config());
  const RateLimit limit{100, 100};
  ASSERT_TRUE(decide(limiter, "k", limit).decision.allowed);
  const auto loads = limiter.stats().script_loads_total;
  EXPECT_EQ(redis_.command({"SCRIPT", "FLUSH"}), "OK");
  auto d = decide(limiter, "k", limit).decision;
  EXPECT_TRUE(d.allowed);
  EXPECT_FALSE(d.degraded);
  EXPECT_EQ(limiter.stats().script_loads_total, loads + 1);
  EXPECT_EQ(limiter.stats().errors_script, 0u);
}

TEST_F(RedisLimiterTest, SlowRedisTimesOutIntoThePolicyAndRecovers) {
  RedisRateLimiter limiter(config(Mode::kPerRequest, Policy::kFailClosed));
  const RateLimit limit{1000, 1000};
  ASSERT_TRUE(decide(limiter, "slow", limit).decision.allowed);
  // Redis holds every client's commands for 500 ms and says OK at once: unlike a DEBUG SLEEP
  // sent from another thread 30 ms earlier, it is certainly slow when the decision is asked for.
  ASSERT_EQ(redis_.command({"CLIENT", "PAUSE", "500"}), "OK");
  auto t = decide(limiter, "slow", limit);
  EXPECT_TRUE(t.decision.degraded);
  EXPECT_FALSE(t.decision.allowed);  // fail_closed
  EXPECT_GE(t.took, 45ms);
  // The command timeout (50 ms) answered, not Redis (paused for 500 ms): degraded and denied
  // above. The upper bound only says nothing hangs: it was 150 ms, and `ctest --repeat` under
  // a load average of ~15 plus a soak took 565 ms once (the Redis I/O thread not scheduled).
  EXPECT_LT(t.took, 1000ms);
  EXPECT_GE(limiter.stats().errors_timeout, 1u);
  EXPECT_EQ(redis_.command({"PING"}), "PONG");  // waits for the pause to end
  EXPECT_TRUE(
      eventually([&] { return !decide(limiter, "slow", limit).decision.degraded; }, 2000ms));
}

TEST_F(RedisLimiterTest, WrongPasswordIsAClearErrorNotASilentAllowAll) {
  RedisTestServer secured({"--requirepass", "s3cret"});
  ASSERT_TRUE(secured.start());
  auto c = config(Mode::kPerRequest, Policy::kFailClosed);
  c.port = secured.port();
  c.password = "wrong";
  RedisRateLimiter limiter(c);
  const RateLimit limit{1000, 1000};
  for (int i = 0; i < 5; ++i) {
    auto d = decide(limiter, "k", limit).decision;
    EXPECT_FALSE(d.allowed);
    EXPECT_TRUE(d.degraded);
  }
  EXPECT_FALSE(limiter.backend_up());
  EXPECT_NE(limiter.last_error().find("AUTH failed"), std::string::npos) << limiter.last_error();

  auto good = config();
  good.port = secured.port();
  good.username = "default";  // ACL form: AUTH user password
  good.password = "s3cret";
  good.db = 3;
  RedisRateLimiter authed(good);
  auto d = decide(authed, "k", limit).decision;
  EXPECT_TRUE(d.allowed);
  EXPECT_FALSE(d.degraded);
  EXPECT_EQ(secured.command({"SELECT", "3"}, "s3cret"), "OK");
}

// Connection refused is known at once: the policy answers without waiting for a timeout. The
// timeouts are far longer than the bound, so that the bound tells "reacted to the refusal" from
// "waited for a timeout" however late a loaded machine runs the I/O thread (it was 150 ms with
// the 50 ms command timeout, and failed once at a load average of ~7).
TEST_F(RedisLimiterTest, UnreachableAtStartTakesThePolicyAndSaysWhy) {
  auto c = config(Mode::kLeased, Policy::kFailClosed);
  c.connect_timeout = 10s;
  c.command_timeout = 10s;
  redis_.kill();
  RedisRateLimiter limiter(c);
  const RateLimit limit{1000, 1000};
  for (int i = 0; i < 5; ++i) {
    auto t = decide(limiter, "k", limit);  // gives up ("decision hung") after 3 s
    EXPECT_FALSE(t.decision.allowed);
    EXPECT_TRUE(t.decision.degraded);
    EXPECT_LT(t.took, 2s) << "waited for a timeout, not the refusal";
  }
  EXPECT_FALSE(limiter.backend_up());
  EXPECT_NE(limiter.last_error().find("refused"), std::string::npos) << limiter.last_error();
}

}  // namespace
}  // namespace sluice::resilience::redis
