// Sharded metric primitives, and the metrics observer run through a real Chain: early answers,
// exceptions, unknown methods and per-middleware self time, read back through Collect().
#include <gtest/gtest.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "gateway/config.hpp"
#include "observe/latency_estimator.hpp"
#include "observe/metrics/http_metrics.hpp"
#include "observe/metrics/metrics_observer.hpp"
#include "observe/metrics/metrics_registry.hpp"
#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/cpu_waits.hpp"
#include "support/manual_host.hpp"

namespace sluice::observe {
namespace {

using Labels = std::map<std::string, std::string>;

const prometheus::ClientMetric* find_metric(const std::vector<prometheus::MetricFamily>& families,
                                            const std::string& name, const Labels& labels) {
  for (const auto& f : families) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      Labels have;
      for (const auto& l : m.label)
        have[l.name] = l.value;
      if (have == labels) return &m;
    }
  }
  return nullptr;
}

TEST(ShardedHistogram, BoundsAreInclusiveAndTotalsAddUp) {
  ShardedHistogram h({10, 100});
  for (uint64_t v : {1, 10, 11, 100, 101, 5000})
    h.observe(v);
  auto t = h.totals();
  EXPECT_EQ(t.counts, (std::vector<uint64_t>{2, 2, 2}));
  EXPECT_EQ(t.sum, 1u + 10 + 11 + 100 + 101 + 5000);
}

TEST(ShardedHistogram, ConcurrentObserversLoseNothing) {
  ShardedHistogram h({1000});
  ShardedCounter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        h.observe(static_cast<uint64_t>(i % 2000));
        c.add();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  auto totals = h.totals();
  EXPECT_EQ(totals.counts[0] + totals.counts[1], 40000u);
  EXPECT_EQ(totals.counts[0], 4u * 5 * 1001);  // 0..1000 (inclusive) of each 2000
  EXPECT_EQ(c.value(), 40000u);
}

// Five threads started together (so the shared shard's writers overlap): threads 0 and 1
// claim shards 0 and 1, as two workers do, the other three write the shared last shard. Each
// runs `adds`, which returns whether its thread was a sole writer; returns how many were.
template <class Adds>
int run_two_workers_and_three_others(Adds adds) {
  std::vector<std::thread> threads;
  std::atomic<int> sole{0}, ready{0};
  for (int t = 0; t < 5; ++t) {
    threads.emplace_back([&, t] {
      if (t < 2) claim_shard_index(static_cast<std::size_t>(t));
      ready.fetch_add(1);
      while (ready.load() < 5)
        std::this_thread::yield();
      if (adds()) ++sole;
    });
  }
  for (auto& t : threads)
    t.join();
  return sole.load();
}

// What five threads of `adds` each (c + 1, h 7, g +2 and -1 in turn) leave when none is lost.
void expect_none_lost(const ShardedCounter& c, const ShardedHistogram& h, const ShardedGauge& g,
                      int adds) {
  EXPECT_EQ(c.value(), 5u * adds);
  EXPECT_EQ(h.totals().counts[0], 5u * adds);
  EXPECT_EQ(h.totals().sum, 7u * 5 * adds);
  EXPECT_EQ(g.value(), 5 * adds / 2);
}

// Workers that own their shard add with plain loads and stores; every other thread shares the
// last shard with atomic adds. Both kinds at once lose nothing (a plain add on a slot another
// thread also wrote would).
TEST(ShardedCounter, SoleWritersAndSharedThreadsTogetherLoseNothing) {
  // CPUs + 1, rounded up: 2 sole shards + the shared one need 2 CPUs (CI has 2).
  if (shard_count() < 4) GTEST_SKIP() << "one CPU: a single sole shard";
  ShardedCounter c;
  ShardedHistogram h({1000});
  ShardedGauge g;
  constexpr int kAdds = 200000;
  const int sole = run_two_workers_and_three_others([&] {
    for (int i = 0; i < kAdds; ++i) {
      c.add();
      h.observe(7);
      g.add(i % 2 == 0 ? 2 : -1);
    }
    return sole_writer(shard_index());
  });
  EXPECT_EQ(sole, 2);
  expect_none_lost(c, h, g, kAdds);
}

// The same with the thread's shard resolved once for several adds (with_shard_writer, as the
// metrics observer records a request's end): sole writers' plain adds, the shared shard's
// atomic ones, and the latency estimator's counters, all exact.
TEST(ShardedCounter, ResolvedWritersOfBothKindsLoseNothing) {
  if (shard_count() < 4) GTEST_SKIP() << "one CPU: a single sole shard";
  ShardedCounter c;
  ShardedHistogram h({1000});
  ShardedGauge g;
  LatencyEstimator recent;
  const auto now = std::chrono::steady_clock::now();
  constexpr int kAdds = 1000000;
  const int sole = run_two_workers_and_three_others([&] {
    return with_shard_writer([&](auto w) {
      for (int i = 0; i < kAdds; ++i) {
        c.add_at(w);
        h.observe_at(w, 7);
        g.add_at(w, i % 2 == 0 ? 2 : -1);
        recent.record_at(w, now, std::chrono::nanoseconds(7));
      }
      return decltype(w)::kSole;
    });
  });
  EXPECT_EQ(sole, 2);
  expect_none_lost(c, h, g, kAdds);
  EXPECT_EQ(recent.snapshot(now).count, 5u * kAdds);
}

// A shard has one sole writer at a time: a second thread claiming a held index, and any claim
// of the last (shared) index, write the shared shard; a claim is free again once its thread ends.
TEST(ShardedCounter, AClaimedShardIsNotGivenTwice) {
  const std::size_t last = shard_count() - 1;
  auto shard_of_claim = [](std::size_t index) {
    std::size_t got = 0;
    std::thread([&] {
      claim_shard_index(index);
      got = shard_index();
    }).join();
    return got;
  };
  std::atomic<bool> held{false}, release{false};
  std::thread owner([&] {
    claim_shard_index(0);
    EXPECT_TRUE(sole_writer(shard_index()));
    EXPECT_EQ(shard_index() & last, 0u);
    held = true;
    while (!release)
      std::this_thread::yield();
  });
  while (!held)
    std::this_thread::yield();
  EXPECT_EQ(shard_of_claim(0), last);  // held: the shared shard, atomic adds
  EXPECT_EQ(shard_of_claim(last), last);
  release = true;
  owner.join();
  const std::size_t again = shard_of_claim(0);
  EXPECT_TRUE(sole_writer(again));
  EXPECT_EQ(again & last, 0u);
  std::size_t unclaimed = 0;
  std::thread([&] { unclaimed = shard_index(); }).join();
  EXPECT_EQ(unclaimed, last);
  EXPECT_FALSE(sole_writer(unclaimed));
}

// The observer labels a request by Beast's parsed verb: the same label as the method's text
// for every verb Beast knows (and "other" for the rest).
TEST(HttpMetrics, AVerbGetsTheLabelOfItsName) {
  namespace http = boost::beast::http;
  for (int v = 0; v <= static_cast<int>(http::verb::unlink); ++v) {
    const auto verb = static_cast<http::verb>(v);
    const auto text = http::to_string(verb);
    const std::string_view name = verb == http::verb::unknown
                                      ? std::string_view("BREW")
                                      : std::string_view(text.data(), text.size());
    EXPECT_EQ(HttpMetrics::method_index(verb), HttpMetrics::method_index(name)) << name;
  }
}

TEST(HttpMetrics, MethodsOutsideTheStandardSetAreOther) {
  EXPECT_EQ(kMethodLabels[HttpMetrics::method_index("GET")], "GET");
  EXPECT_EQ(kMethodLabels[HttpMetrics::method_index("PATCH")], "PATCH");
  EXPECT_EQ(kMethodLabels[HttpMetrics::method_index("OPTIONS")], "OPTIONS");
  EXPECT_EQ(kMethodLabels[HttpMetrics::method_index("get")], "other");
  EXPECT_EQ(kMethodLabels[HttpMetrics::method_index("BREW")], "other");
  EXPECT_EQ(kMethodLabels[HttpMetrics::method_index("")], "other");
}

// Answers 401 on /deny; spins a little so its self time is measurable.
class Auth final : public Middleware {
 public:
  std::string_view name() const override { return "auth"; }
  Decision pre_handle(Exchange& ex) override {
    if (ex.request().path() == "/deny") return ex.answer_error(401, "unauthorized", "no");
    return Decision::next();
  }
};

class Thrower final : public Middleware {
 public:
  std::string_view name() const override { return "thrower"; }
  Decision pre_handle(Exchange& ex) override {
    if (ex.request().path() == "/boom") throw std::runtime_error("boom");
    return Decision::next();
  }
};

class Ok final : public Handler {
 public:
  std::string_view kind() const override { return "ok"; }
  Decision handle(Exchange& ex) override { return ex.answer(200, "text/plain", "12345"); }
};

TEST(MetricsObserver, SeesEveryOutcomeThroughTheChain) {
  auto http = std::make_shared<HttpMetrics>();
  auto registry = std::make_shared<MetricsRegistry>();
  auto collectable = std::make_shared<FunctionCollectable>([http] { return http->collect(); });
  registry->add_collectable(collectable);

  Chain chain("api", {std::make_shared<MetricsObserver>(*http)});
  ASSERT_TRUE(chain.use(std::make_shared<Auth>()).ok());
  ASSERT_TRUE(chain.use(std::make_shared<Thrower>()).ok());
  RouteInfo info{"api"};
  Ok handler;
  auto host = std::make_shared<testing::ManualHost>();
  auto run = [&](std::string_view method, std::string_view path) {
    auto& ex = host->exchange(method, path);
    ExchangeDriver(ex).set_route(&info);
    auto lease = chain.acquire();
    bool done = false;
    ExchangeDriver(ex).run(*lease, handler, [&] { done = true; });
    host->run_all();
    ASSERT_TRUE(done);
  };
  for (int i = 0; i < 3; ++i)
    run("GET", "/ok");
  run("POST", "/deny");
  run("POST", "/deny");
  run("GET", "/boom");
  run("BREW", "/ok");

  auto families = registry->Collect();
  EXPECT_EQ(registry->Collect().size(), families.size()) << "a second scrape sees the same";
  auto count = [&](Labels l) {
    const auto* m = find_metric(families, "http_requests_total", l);
    return m ? m->counter.value : -1;
  };
  EXPECT_EQ(count({{"route", "api"}, {"method", "GET"}, {"code", "200"}}), 3);
  EXPECT_EQ(count({{"route", "api"}, {"method", "POST"}, {"code", "401"}}), 2);
  EXPECT_EQ(count({{"route", "api"}, {"method", "GET"}, {"code", "500"}}), 1);
  EXPECT_EQ(count({{"route", "api"}, {"method", "other"}, {"code", "200"}}), 1);
  EXPECT_EQ(count({{"route", "api"}, {"method", "BREW"}, {"code", "200"}}), -1);

  const auto* get =
      find_metric(families, "http_request_duration_seconds", {{"route", "api"}, {"method", "GET"}});
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get->histogram.sample_count, 4u);
  ASSERT_EQ(get->histogram.bucket.size(), 17u);  // 16 default bounds + Inf
  EXPECT_DOUBLE_EQ(get->histogram.bucket.front().upper_bound, 0.0001);
  EXPECT_DOUBLE_EQ(get->histogram.bucket[15].upper_bound, 10);
  EXPECT_EQ(get->histogram.bucket.back().cumulative_count, 4u);
  const auto* size =
      find_metric(families, "http_response_size_bytes", {{"route", "api"}, {"method", "GET"}});
  ASSERT_NE(size, nullptr);
  EXPECT_EQ(size->histogram.sample_count, 4u);

  // auth ran for all 7 requests; thrower only for the 5 that auth let through.
  const auto* auth = find_metric(families, "http_middleware_duration_seconds",
                                 {{"middleware", "auth"}, {"route", "api"}});
  const auto* thrower = find_metric(families, "http_middleware_duration_seconds",
                                    {{"middleware", "thrower"}, {"route", "api"}});
  ASSERT_NE(auth, nullptr);
  ASSERT_NE(thrower, nullptr);
  EXPECT_EQ(auth->histogram.sample_count, 7u);
  EXPECT_EQ(thrower->histogram.sample_count, 5u);
  EXPECT_GT(auth->histogram.sample_sum, 0);

  const auto* in_flight = find_metric(families, "http_requests_in_flight", {});
  ASSERT_NE(in_flight, nullptr);
  EXPECT_EQ(in_flight->gauge.value, 0);
  EXPECT_EQ(http->find_route("api")
                ->find_middleware("auth")
                ->recent.snapshot(std::chrono::steady_clock::now())
                .count,
            7u);
}

TEST(MetricsObserver, InFlightCountsRequestsThatWait) {
  HttpMetrics http;
  class Waiter final : public Middleware {
   public:
    std::string_view name() const override { return "waiter"; }
    Decision pre_handle(Exchange& ex) override {
      resume = ex.defer();
      return Decision::wait();
    }
    Resume resume;
  };
  auto waiter = std::make_shared<Waiter>();
  Chain chain("r", {std::make_shared<MetricsObserver>(http)});
  ASSERT_TRUE(chain.use(waiter).ok());
  auto host = std::make_shared<testing::ManualHost>();
  auto& ex = host->exchange("GET", "/");
  Ok handler;
  auto lease = chain.acquire();
  ExchangeDriver(ex).run(*lease, handler, [] {});
  EXPECT_EQ(http.in_flight().value(), 1);
  waiter->resume(Decision::next());
  host->run_all();
  EXPECT_EQ(http.in_flight().value(), 0);
}

// The runner times hooks with one clock read per hook (each hook's end is the next one's start)
// and reads the end of the request once for every observer: a slow hook's time stays its own,
// and the end time covers every hook.
TEST(MetricsObserver, HookTimesStayWithTheirHookAndTheEndCoversThemAll) {
  class Sleepy final : public Middleware {
   public:
    std::string_view name() const override { return "sleepy"; }
    Decision pre_handle(Exchange&) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return Decision::next();
    }
    void post_handle(Exchange&, std::chrono::nanoseconds) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  class Quick final : public Middleware {
   public:
    std::string_view name() const override { return "quick"; }
    Decision pre_handle(Exchange&) override { return Decision::next(); }
  };
  class EndProbe final : public Observer {
   public:
    void on_request_end(Exchange& ex) override {
      total = ex.finished_at() - ex.context().start_steady();
      sleepy = ex.middleware_time(0);
      quick = ex.middleware_time(1);
    }
    bool wants_middleware_times() const override { return true; }
    std::chrono::nanoseconds total{}, sleepy{}, quick{};
  };
  auto probe = std::make_shared<EndProbe>();
  Chain chain("r", {probe});
  ASSERT_TRUE(chain.use(std::make_shared<Sleepy>()).ok());
  ASSERT_TRUE(chain.use(std::make_shared<Quick>()).ok());
  auto host = std::make_shared<testing::ManualHost>();
  auto& ex = host->exchange("GET", "/");
  Ok handler;
  auto lease = chain.acquire();
  const auto waited_before = sluice::testing::this_thread_run_queue_wait();
  ExchangeDriver(ex).run(*lease, handler, [] {});
  host->run_all();
  // The hooks run on this thread: what it waited for a CPU (a sleep's overrun on a busy
  // machine, a preemption inside a hook) is no middleware's time. Charged the sleeps, `quick`
  // would take 20-30 ms besides it.
  const auto waited = sluice::testing::this_thread_run_queue_wait() - waited_before;
  EXPECT_GE(probe->sleepy, std::chrono::milliseconds(30));  // pre + post
  EXPECT_LT(probe->quick - waited, std::chrono::milliseconds(10))
      << "the sleeps are not charged to its neighbour; this thread waited " << waited.count()
      << " ns for a CPU";
  EXPECT_GE(probe->total, probe->sleepy + probe->quick);
  EXPECT_GE(ex.finished_at(), ex.context().start_steady());
}

// A hook declared empty (Middleware::skip_hooks) is neither called nor timed; the middleware's
// time is its other hook's, so it is still a sample. The request's end is still read when the
// last post_handle to run is a skipped one.
TEST(MetricsObserver, AMiddlewareWithASkippedHookIsTimedByItsOtherHook) {
  class PreOnly final : public Middleware {
   public:
    PreOnly() { skip_hooks(false, true); }
    std::string_view name() const override { return "pre-only"; }
    Decision pre_handle(Exchange&) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return Decision::next();
    }
  };
  class PostOnly final : public Middleware {
   public:
    PostOnly() { skip_hooks(true, false); }
    std::string_view name() const override { return "post-only"; }
    Decision pre_handle(Exchange&) override { return Decision::next(); }  // declared empty
    void post_handle(Exchange&, std::chrono::nanoseconds) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
    }
  };
  class EndProbe final : public Observer {
   public:
    void on_request_end(Exchange& ex) override {
      total = ex.finished_at() - ex.context().start_steady();
      outer = ex.middleware_time(0);
      inner = ex.middleware_time(1);
    }
    bool wants_middleware_times() const override { return true; }
    std::chrono::nanoseconds total{}, outer{}, inner{};
  };
  auto probe = std::make_shared<EndProbe>();
  Chain chain("r", {probe});
  ASSERT_TRUE(chain.use(std::make_shared<PreOnly>()).ok());  // outermost: its post is the last
  ASSERT_TRUE(chain.use(std::make_shared<PostOnly>()).ok());
  auto host = std::make_shared<testing::ManualHost>();
  auto& ex = host->exchange("GET", "/");
  Ok handler;
  auto lease = chain.acquire();
  const auto waited_before = sluice::testing::this_thread_run_queue_wait();
  ExchangeDriver(ex).run(*lease, handler, [] {});
  host->run_all();
  // Less what this thread waited for a CPU (its 5 ms sleep took 32 ms once under load, against
  // a bound of half the inner's 40 ms): charged the inner's sleep, `outer` would be >= 45 ms
  // besides it.
  const auto waited = sluice::testing::this_thread_run_queue_wait() - waited_before;
  EXPECT_GE(probe->outer, std::chrono::milliseconds(5));
  EXPECT_GE(probe->inner, std::chrono::milliseconds(40));
  EXPECT_LT(probe->outer - waited, std::chrono::milliseconds(25))
      << "not charged the inner's sleep; this thread waited " << waited.count() << " ns for a CPU";
  EXPECT_GE(probe->total, probe->outer + probe->inner);
}

TEST(MetricsSection, OnByDefaultAndConfigurable) {
  GatewayServices services;
  services.metrics = std::make_shared<MetricsRegistry>();
  const std::string routes = "routes: [{ name: r, handler: { type: respond, status: 200 } }]\n";
  auto plain = gateway::load_config_text(routes, "t.yaml", nullptr, services);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain.config->observers.size(), 1u);

  auto off = gateway::load_config_text("metrics: { enabled: false }\n" + routes, "t.yaml", nullptr,
                                       services);
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off.config->observers.empty());

  auto bad = gateway::load_config_text(
      "metrics: { duration_buckets_seconds: [0.1, 0.01] }\n" + routes, "t.yaml", nullptr, services);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.errors.at(0).find("ascending"), std::string::npos) << bad.errors.at(0);
  EXPECT_NE(bad.errors.at(0).find("t.yaml:1:"), std::string::npos) << bad.errors.at(0);

  // process_* comes from /proc at scrape time.
  bool process = false;
  for (const auto& f : services.metrics->Collect())
    process |= f.name == "process_open_fds";
  EXPECT_TRUE(process);
}

}  // namespace
}  // namespace sluice::observe
