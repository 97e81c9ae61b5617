// The fault engine without HTTP plumbing: seeded draws (known SplitMix64 outputs, exact
// reproducible counts, thread independence), delay distributions, match rules, client CIDRs,
// the upstream switchboard and the fault board's reload/runtime precedence.
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <thread>

#include "core/http_message.hpp"
#include "core/seeded_draw.hpp"
#include "middleware/fault/fault_board.hpp"
#include "net/cidr.hpp"
#include "upstream/upstream_faults.hpp"

namespace sluice::middleware::fault {
namespace {

using namespace std::chrono_literals;

// The reference: the n-th output of a SplitMix64 generator, written out independently.
std::uint64_t reference_splitmix(std::uint64_t state, std::uint64_t n) {
  std::uint64_t z = 0;
  for (std::uint64_t i = 0; i <= n; ++i) {
    state += 0x9e3779b97f4a7c15ULL;
    z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z = z ^ (z >> 31);
  }
  return z;
}

TEST(SeededDraw, MatchesSplitMix64KnownOutputs) {
  // SplitMix64 seeded with 0 (Vigna's splitmix64.c): first output 0xe220a8397b1dcdaf.
  EXPECT_EQ(splitmix64(0, 0), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(splitmix64(0, 1), 0x6e789e6aa1b965f4ULL);
  for (std::uint64_t n : {0, 1, 7, 1000})
    EXPECT_EQ(splitmix64(42, n), reference_splitmix(42, n));
}

TEST(SeededDraw, PercentageCountsAreExactAndRepeatable) {
  FaultBoard board(nullptr, nullptr);
  FaultSpec spec{.name = "abort-10", .kind = FaultKind::kAbort, .percentage = 10};
  auto s = board.declare(spec, 7);
  int hits = 0;
  for (int i = 0; i < 10'000; ++i)
    hits += s->draw().hit ? 1 : 0;
  // The count predicted from the formula alone (stream seed, index, top 53 bits).
  int expected = 0;
  const std::uint64_t seed = stream_seed(7, "abort-10");
  for (std::uint64_t n = 0; n < 10'000; ++n) {
    expected += static_cast<double>(reference_splitmix(seed, n) >> 11) * 0x1.0p-53 * 100 < 10;
  }
  EXPECT_EQ(hits, expected);
  EXPECT_NEAR(hits, 1000, 120);  // 4 sigma of Binomial(10000, 0.1)
  EXPECT_EQ(s->matched(), 10'000u);

  FaultBoard again(nullptr, nullptr);
  auto s2 = again.declare(spec, 7);
  int hits2 = 0;
  for (int i = 0; i < 10'000; ++i)
    hits2 += s2->draw().hit ? 1 : 0;
  EXPECT_EQ(hits2, hits) << "same seed, same draws";
}

TEST(SeededDraw, ZeroAndHundredPercent) {
  FaultBoard board(nullptr, nullptr);
  auto none = board.declare({.name = "n", .kind = FaultKind::kAbort, .percentage = 0}, 1);
  auto all = board.declare({.name = "a", .kind = FaultKind::kAbort, .percentage = 100}, 1);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(none->draw().hit);
    EXPECT_TRUE(all->draw().hit);
  }
}

// Two threads share one stream: every index is drawn once and its outcome is the one the
// sequential run gives it, so the experiment is the same whatever the worker count.
TEST(SeededDraw, SequenceIsIndependentOfThreads) {
  FaultSpec spec{.name = "f", .kind = FaultKind::kAbort, .percentage = 30};
  FaultBoard sequential_board(nullptr, nullptr);
  auto seq = sequential_board.declare(spec, 99);
  std::vector<bool> expected;
  for (int i = 0; i < 20'000; ++i)
    expected.push_back(seq->draw().hit);

  FaultBoard board(nullptr, nullptr);
  auto shared = board.declare(spec, 99);
  std::vector<std::pair<std::uint64_t, bool>> a, b;
  auto work = [&](auto& out) {
    for (int i = 0; i < 10'000; ++i) {
      auto d = shared->draw();
      out.emplace_back(d.index, d.hit);
    }
  };
  std::thread t1([&] { work(a); });
  std::thread t2([&] { work(b); });
  t1.join();
  t2.join();
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  ASSERT_EQ(a.size(), expected.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, i);
    ASSERT_EQ(a[i].second, expected[i]) << "index " << i;
  }
}

TEST(DelaySpec, Distributions) {
  DelaySpec fixed{.fixed = 200ms};
  EXPECT_EQ(fixed.sample(1, 0), 200ms);

  DelaySpec uniform{.distribution = DelaySpec::Distribution::kUniform, .min = 100ms, .max = 300ms};
  double sum = 0;
  for (std::uint64_t n = 0; n < 10'000; ++n) {
    auto d = uniform.sample(5, n);
    ASSERT_GE(d, 100ms);
    ASSERT_LE(d, 300ms);
    EXPECT_EQ(d, uniform.sample(5, n)) << "a pure function of (seed, n)";
    sum += std::chrono::duration<double, std::milli>(d).count();
  }
  EXPECT_NEAR(sum / 10'000, 200, 3);

  DelaySpec normal{.distribution = DelaySpec::Distribution::kNormal, .mean = 50ms, .stddev = 40ms};
  sum = 0;
  int at_zero = 0;
  for (std::uint64_t n = 0; n < 10'000; ++n) {
    auto d = normal.sample(9, n);
    ASSERT_GE(d, 0ms) << "clamped at zero";
    at_zero += d == 0ms;
    sum += std::chrono::duration<double, std::milli>(d).count();
  }
  EXPECT_GT(at_zero, 500);           // P(z < -1.25) ~ 10.6 %
  EXPECT_NEAR(sum / 10'000, 52, 3);  // the mean of the clamped normal is a bit above 50
}

struct Msg {
  detail::RequestMessage message;
  Request request{message};
  Msg(std::string_view method, std::string_view target) {
    message.method_string({method.data(), method.size()});
    message.target({target.data(), target.size()});
  }
};

TEST(FaultMatch, PathMethodHeaderRoute) {
  FaultMatch m{.prefix = "/api",
               .methods = {"get", "POST"},
               .headers = {{"X-Chaos", "on"}},
               .routes = {"api"}};
  Msg ok("GET", "/api/users?x=1");
  ok.request.set_header("x-chaos", "on");
  EXPECT_TRUE(m.matches(ok.request, "api"));
  EXPECT_FALSE(m.matches(ok.request, "other")) << "route";
  Msg del("DELETE", "/api/users");
  del.request.set_header("x-chaos", "on");
  EXPECT_FALSE(m.matches(del.request, "api")) << "method";
  Msg wrong_value("GET", "/api");
  wrong_value.request.set_header("x-chaos", "off");
  EXPECT_FALSE(m.matches(wrong_value.request, "api")) << "header value";
  Msg other_path("GET", "/web");
  other_path.request.set_header("x-chaos", "on");
  EXPECT_FALSE(m.matches(other_path.request, "api")) << "prefix";

  FaultMatch exact{.exact = "/pay", .headers = {{"x-present", ""}}};
  Msg pay("POST", "/pay");
  EXPECT_FALSE(exact.matches(pay.request, ""));
  pay.request.set_header("X-Present", "anything");
  EXPECT_TRUE(exact.matches(pay.request, ""));
  Msg longer("POST", "/pay/more");
  longer.request.set_header("X-Present", "1");
  EXPECT_FALSE(exact.matches(longer.request, ""));
  EXPECT_TRUE(FaultMatch{}.matches(longer.request, "")) << "empty match: everything";
}

// allowed_clients of header faults is a net::CidrSet, the one CIDR set of the tree.
TEST(ClientNetworks, V4V6AndMapped) {
  std::string error;
  net::CidrSet nets;
  EXPECT_TRUE(nets.add("10.0.0.0/8", error)) << error;
  EXPECT_TRUE(nets.add("192.168.1.7", error)) << error;
  EXPECT_TRUE(nets.add("fd00::/8", error)) << error;
  EXPECT_TRUE(nets.contains("10.200.3.4"));
  EXPECT_FALSE(nets.contains("11.0.0.1"));
  EXPECT_TRUE(nets.contains("192.168.1.7"));
  EXPECT_FALSE(nets.contains("192.168.1.8"));
  EXPECT_TRUE(nets.contains("fd12::1"));
  EXPECT_FALSE(nets.contains("fe80::1"));
  EXPECT_TRUE(nets.contains("::ffff:10.1.1.1")) << "IPv4-mapped";
  EXPECT_FALSE(nets.contains("not-an-ip"));
  EXPECT_FALSE(nets.add("10.0.0.0/33", error));
  EXPECT_FALSE(nets.add("10.0.0/8", error));
  net::CidrSet any;
  EXPECT_TRUE(any.add("0.0.0.0/0", error)) << error;
  EXPECT_TRUE(any.contains("8.8.8.8"));
  EXPECT_FALSE(any.contains("::1")) << "families do not mix";
}

TEST(UpstreamFaults, SeededPercentageAndInjectCallback) {
  auto run = [](std::uint64_t seed) {
    upstream::UpstreamFaults faults;
    faults.set_seed(seed);
    int injected = 0;
    faults.set("payments", {.kind = upstream::UpstreamFault::Kind::kStatus,
                            .status = 503,
                            .percentage = 50,
                            .fault = "pay-down",
                            .on_inject = [&injected] { ++injected; }});
    std::vector<bool> seq;
    for (int i = 0; i < 2000; ++i)
      seq.push_back(faults.check("payments").has_value());
    EXPECT_FALSE(faults.check("orders"));
    EXPECT_EQ(injected, std::count(seq.begin(), seq.end(), true));
    faults.clear("payments");
    EXPECT_FALSE(faults.check("payments"));
    return seq;
  };
  auto a = run(3), b = run(3), c = run(4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  const auto hits = std::count(a.begin(), a.end(), true);
  EXPECT_NEAR(hits, 1000, 90);
  // Not blocky: the hits are spread over the run, not the first half of it.
  EXPECT_NEAR(std::count(a.begin(), a.begin() + 1000, true), 500, 70);
}

TEST(FaultBoard, DependencyFaultFollowsSwitchAndOwners) {
  upstream::UpstreamFaults upstreams;
  FaultBoard board(&upstreams, nullptr);
  FaultSpec spec{.name = "pay-down", .kind = FaultKind::kDependencyUnavailable};
  spec.dependency.cluster = "payments";
  auto s = board.declare(spec, 1);
  ASSERT_TRUE(upstreams.check("payments"));
  EXPECT_EQ(upstreams.check("payments")->fault, "pay-down");
  EXPECT_EQ(board.view("pay-down")->injected, 2u);
  board.set_enabled("pay-down", false, "test");
  EXPECT_FALSE(upstreams.check("payments"));
  board.set_enabled("pay-down", true, "test");
  board.set_percentage("pay-down", 0, "test");
  EXPECT_FALSE(upstreams.check("payments"));
  EXPECT_EQ(upstreams.active().at("payments").percentage, 0);
  board.set_percentage("pay-down", 100, "test");
  EXPECT_TRUE(upstreams.check("payments"));
  board.release(s);
  EXPECT_FALSE(upstreams.check("payments")) << "nobody declares it any more";
  EXPECT_FALSE(board.set_enabled("nope", true, "test"));
}

// A reload keeps runtime changes unless the config changed that value itself.
TEST(FaultBoard, ReloadKeepsRuntimeChangesUnlessConfigChanged) {
  FaultBoard board(nullptr, nullptr);
  FaultSpec spec{.name = "slow", .kind = FaultKind::kDelay, .enabled = false, .percentage = 5};
  auto s = board.declare(spec, 1);
  board.set_enabled("slow", true, "test");
  board.set_percentage("slow", 50, "test");
  board.declare(spec, 1);  // reload, same config
  EXPECT_TRUE(s->enabled());
  EXPECT_EQ(s->percentage(), 50);
  spec.percentage = 20;  // the config now says 20: newer intent
  board.declare(spec, 1);
  EXPECT_EQ(s->percentage(), 20);
  EXPECT_TRUE(s->enabled()) << "the switch was not changed in the config";
  spec.enabled = true;
  board.declare(spec, 1);
  spec.enabled = false;
  board.declare(spec, 1);
  EXPECT_FALSE(s->enabled());
}

// The board's series (fault_stats.hpp): made when a fault is declared, counted by its state.
TEST(FaultBoard, CountsIntoTheFaultFamilies) {
  auto registry = std::make_shared<prometheus::Registry>();
  FaultBoard board(nullptr, registry);
  auto s = board.declare({.name = "slow", .kind = FaultKind::kDelay, .percentage = 100}, 1);
  auto text = [&] { return prometheus::TextSerializer().Serialize(registry->Collect()); };
  EXPECT_NE(text().find(R"(sluice_fault_injected_total{fault="slow",kind="delay"} 0)"),
            std::string::npos)
      << "declared at 0 before the first injection";
  s->count_injected(FaultKind::kDelay);
  s->count_injected(FaultKind::kDelay);
  s->count_skipped();
  const std::string m = text();
  EXPECT_NE(m.find(R"(sluice_fault_injected_total{fault="slow",kind="delay"} 2)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(sluice_fault_skipped_total{fault="slow"} 1)"), std::string::npos) << m;
}

}  // namespace
}  // namespace sluice::middleware::fault
