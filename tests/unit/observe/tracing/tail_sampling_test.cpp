// Tail sampling: the decision rules (error, slow, then the head decision), the pending cap and
// what is counted beyond it, the `tail_sampling:` config errors with their positions, and the
// tracing observer keeping an error or a slow request that its head decision dropped.
#include "observe/tracing/tail_sampling.hpp"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "observe/tracing/tracing_observer.hpp"
#include "sluice/chain.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"
#include "support/otlp_collector.hpp"
#include "support/resilience_harness.hpp"

namespace sluice::observe {
namespace {

using namespace std::chrono_literals;
using R = SampleReason;

TailSamplingOptions options(std::chrono::nanoseconds slow = 800ms, int64_t max_pending = 100) {
  TailSamplingOptions o;
  o.enabled = true;
  o.errors = {{500, 599}, {429, 429}};
  o.slow = slow;
  o.max_pending = max_pending;
  return o;
}

TEST(TailSampling, ErrorsThenSlowThenTheHeadDecision) {
  auto stats = std::make_shared<SamplingStats>();
  TailSampler t(options(), stats);
  auto decide = [&](bool head, bool parent, int status, std::chrono::nanoseconds took) {
    EXPECT_TRUE(t.admit());
    return t.decide(true, head, parent, status, took);
  };
  EXPECT_EQ(decide(false, false, 503, 1ms), R::kError);
  EXPECT_EQ(decide(false, false, 429, 1ms), R::kError);
  EXPECT_EQ(decide(false, true, 500, 2s), R::kError);  // error first, then slow
  EXPECT_EQ(decide(false, false, 404, 1ms), R::kDropped);
  EXPECT_EQ(decide(false, false, 200, 800ms), R::kSlow);  // at the threshold counts as slow
  EXPECT_EQ(decide(false, false, 200, 799ms), R::kDropped);
  EXPECT_EQ(decide(true, false, 200, 1ms), R::kRatio);
  EXPECT_EQ(decide(true, true, 200, 1ms), R::kParent);
  EXPECT_EQ(decide(false, true, 200, 1ms), R::kDropped);  // an unsampled parent, ordinary outcome
  EXPECT_EQ(stats->total(R::kError), 3u);
  EXPECT_EQ(stats->total(R::kSlow), 1u);
  EXPECT_EQ(stats->total(R::kDropped), 3u);
  EXPECT_EQ(stats->total(R::kRatio), 1u);
  EXPECT_EQ(stats->total(R::kParent), 1u);
  EXPECT_EQ(stats->pending_now(), 0);
}

TEST(TailSampling, BeyondMaxPendingOnlyTheHeadDecisionCountsAndIsCounted) {
  auto stats = std::make_shared<SamplingStats>();
  TailSampler t(options(800ms, 2), stats);
  ASSERT_TRUE(t.admit());
  ASSERT_TRUE(t.admit());
  EXPECT_EQ(stats->pending_now(), 2);
  EXPECT_FALSE(t.admit());  // the third in flight
  EXPECT_EQ(stats->pending_now(), 2);
  EXPECT_EQ(t.decide(false, false, false, 503, 2s), R::kOverflow);  // no tail rule for it
  EXPECT_EQ(t.decide(false, true, false, 503, 2s), R::kRatio);      // its head decision still holds
  EXPECT_EQ(t.decide(true, false, false, 503, 1ms), R::kError);
  EXPECT_EQ(stats->pending_now(), 1);
  EXPECT_TRUE(t.admit());  // a slot was released
  EXPECT_EQ(stats->total(R::kOverflow), 1u);
}

TEST(TailSampling, DisabledKeepsTheHeadDecisionAndNeverDefers) {
  auto stats = std::make_shared<SamplingStats>();
  TailSampler t(TailSamplingOptions{}, stats);
  EXPECT_FALSE(t.admit());
  EXPECT_EQ(t.decide(false, false, false, 503, 2s), R::kDropped);
  EXPECT_EQ(t.decide(false, true, false, 200, 1ms), R::kRatio);
  EXPECT_EQ(stats->pending_now(), 0);
}

std::string first_error(const std::string& tail) {
  testing::Harness h("tracing: { endpoint: \"http://127.0.0.1:1\", tail_sampling: " + tail +
                     " }\nroutes: [{name: r, handler: {type: echo}}]");
  return h.errors.empty() ? std::string() : h.errors[0];
}

TEST(TailSampling, ConfigErrorsHavePositions) {
  EXPECT_EQ(first_error("{errors: [5xx, 42]}"),
            "test.yaml:1:68: tracing.tail_sampling.errors: \"42\" is not a status: expected a "
            "class (5xx), a code (429) or a range (500-504) between 100 and 599");
  EXPECT_EQ(first_error("{errors: [504-500]}"),
            "test.yaml:1:68: tracing.tail_sampling.errors: \"504-500\" is not a status: expected "
            "a class (5xx), a code (429) or a range (500-504) between 100 and 599");
  EXPECT_EQ(first_error("{slow_ms: 0}"),
            "test.yaml:1:69: tracing.tail_sampling.slow_ms: must be greater than 0 (leave it "
            "out: no slow rule)");
  EXPECT_EQ(first_error("{errors: []}"),
            "test.yaml:1:59: tracing.tail_sampling: keeps nothing beyond the head sampler: set "
            "errors or slow_ms (or remove tail_sampling)");
  EXPECT_EQ(first_error("{slow: 5}"),
            "test.yaml:1:60: tracing.tail_sampling: unknown key \"slow\"");
  EXPECT_EQ(first_error("{errors: [5xx, 4xx, 500-504, 429], slow_ms: 250, max_pending: 5}"), "");
}

// A status the test picks per path, after an optional real sleep (the observer measures the
// request with the steady clock).
class Scripted final : public Handler {
 public:
  std::string_view kind() const override { return "scripted"; }
  Decision handle(Exchange& ex) override {
    if (ex.request().path() == "/slow") std::this_thread::sleep_for(200ms);
    const int status = ex.request().path() == "/error" ? 502 : 200;
    return ex.answer(status, "text/plain", "x");
  }
};

struct Gateway {
  explicit Gateway(TailSamplingOptions tail) {
    OtlpConfig config;
    config.endpoint = collector.url();
    config.schedule_delay = 20ms;
    exporter = std::make_shared<OtlpExporter>(
        config, [](const std::string& e) { ADD_FAILURE() << "exporter: " << e; });
    chain = std::make_unique<Chain>(
        "api", std::vector<std::shared_ptr<Observer>>{std::make_shared<TracingObserver>(
                   Sampler::parent_based(Sampler::trace_id_ratio(0)), exporter, false,
                   std::make_shared<TailSampler>(tail, stats))});
  }
  std::string run(std::string_view path, std::string traceparent = {}) {
    auto& ex = host->exchange("GET", path);
    if (!traceparent.empty()) ex.request().add_header("traceparent", traceparent);
    ExchangeDriver(ex).set_route(&info);
    auto lease = chain->acquire();
    ExchangeDriver(ex).run(*lease, handler, [] {});
    host->run_all();
    return std::string(ex.request().header("traceparent"));
  }
  std::vector<nlohmann::json> exported() {
    EXPECT_TRUE(exporter->flush(5s));
    return collector.spans();
  }
  testing::OtlpCollector collector;
  std::shared_ptr<OtlpExporter> exporter;
  std::shared_ptr<SamplingStats> stats = std::make_shared<SamplingStats>();
  std::unique_ptr<Chain> chain;
  RouteInfo info{"api"};
  Scripted handler;
  std::shared_ptr<testing::ManualHost> host = std::make_shared<testing::ManualHost>();
};

TEST(TailSampling, TheObserverKeepsErrorsAndSlowRequestsAtRatioZero) {
  Gateway g(options(150ms));  // margin: a "fast" request is slow on a loaded machine
  const std::string forwarded = g.run("/error");
  g.run("/slow");
  g.run("/fast");
  // An unsampled caller: the upstream is told "not sampled", the error is kept all the same.
  g.run("/error", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  EXPECT_EQ(forwarded.substr(53), "02");  // the head decision: not sampled (random trace id)
  auto spans = g.exported();
  ASSERT_EQ(spans.size(), 3u);
  std::multiset<std::string> seen;
  for (const auto& s : spans) {
    seen.insert(testing::span_attribute(s, "url.path")["stringValue"].get<std::string>() + " " +
                testing::span_attribute(s, "sluice.sampled_by")["stringValue"].get<std::string>());
  }
  EXPECT_EQ(seen, (std::multiset<std::string>{"/error error", "/error error", "/slow slow"}));
  EXPECT_EQ(g.stats->total(R::kDropped), 1u);
  EXPECT_EQ(g.stats->pending_now(), 0);
}

TEST(TailSampling, ASampledParentIsKeptWithReasonParent) {
  Gateway g(options());
  g.run("/fast", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto spans = g.exported();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(testing::span_attribute(spans[0], "sluice.sampled_by")["stringValue"], "parent");
  EXPECT_EQ(g.stats->total(R::kParent), 1u);
}

}  // namespace
}  // namespace sluice::observe
