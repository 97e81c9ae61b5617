// Exchange::hook_time: the runner's reading of a hook's start, shared with a hook that needs
// "now" on the same clock. What must hold: a hook's measured time is its own, the shared value
// is that hook's start (not an earlier hook's, not the request's), and after a wait, in another
// clock, or without hook timing, the hook reads its clock itself. Time is a FakeClock that the
// host (the chain's reads) and the hooks share.
#include <gtest/gtest.h>

#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::ManualHost;

// Spends `pre` and `post` of fake time in its hooks and records hook_time at each hook's start.
class Spends final : public Middleware {
 public:
  Spends(std::string name, FakeClock& clock, Nanos pre, Nanos post)
      : name_(std::move(name)), clock_(clock), pre_(pre), post_(post) {}
  std::string_view name() const override { return name_; }
  Decision pre_handle(Exchange& ex) override {
    pre_seen = ex.hook_time(clock_);
    clock_.advance(pre_);
    if (wait) {
      resume = ex.defer();
      return Decision::wait();
    }
    return Decision::next();
  }
  void post_handle(Exchange& ex, Nanos) override {
    post_seen = ex.hook_time(clock_);
    clock_.advance(post_);
  }

  bool wait = false;
  Resume resume;
  SteadyTime pre_seen{};
  SteadyTime post_seen{};

 private:
  std::string name_;
  FakeClock& clock_;
  Nanos pre_;
  Nanos post_;
};

class Spending final : public Handler {
 public:
  Spending(FakeClock& clock, Nanos latency) : clock_(clock), latency_(latency) {}
  std::string_view kind() const override { return "spending"; }
  Decision handle(Exchange& ex) override {
    seen = ex.hook_time(clock_);
    clock_.advance(latency_);
    return ex.answer(200, "text/plain", "ok");
  }
  SteadyTime seen{};

 private:
  FakeClock& clock_;
  Nanos latency_;
};

// What the metrics observer asks for: per-middleware times, so the runner reads at each hook.
class WantsTimes final : public Observer {
 public:
  explicit WantsTimes(bool wants) : wants_(wants) {}
  bool wants_middleware_times() const override { return wants_; }

 private:
  bool wants_;
};

struct Rig {
  explicit Rig(bool timing = true) : chain("t", {std::make_shared<WantsTimes>(timing)}) {
    host->set_clock(&clock);
  }
  void run() {
    snapshot = chain.current();
    ex = &host->exchange("GET", "/");
    start = clock.now();
    ExchangeDriver(*ex).run(*snapshot, handler, [this] { done = true; });
    host->run_all();
  }
  FakeClock clock;
  std::shared_ptr<ManualHost> host = std::make_shared<ManualHost>();
  Chain chain;
  std::shared_ptr<Spends> a = std::make_shared<Spends>("a", clock, 30ms, 7ms);
  std::shared_ptr<Spends> b = std::make_shared<Spends>("b", clock, 0ms, 0ms);
  Spending handler{clock, 100ms};
  std::shared_ptr<const ChainSnapshot> snapshot;
  Exchange* ex = nullptr;
  SteadyTime start{};
  bool done = false;
};

TEST(HookTime, EachHookSeesItsOwnStartAndEachMeasuredTimeIsItsOwn) {
  Rig r;
  ASSERT_TRUE(r.chain.assign({{r.a}, {r.b}}).ok());
  r.run();
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.a->pre_seen, r.start);
  EXPECT_EQ(r.b->pre_seen, r.start + 30ms) << "b starts when a's pre_handle ended";
  EXPECT_EQ(r.handler.seen, r.start + 30ms);
  EXPECT_EQ(r.b->post_seen, r.start + 130ms) << "the handler's 100 ms are before post";
  EXPECT_EQ(r.a->post_seen, r.start + 130ms);
  EXPECT_EQ(r.ex->middleware_time(0), 37ms);
  EXPECT_EQ(r.ex->middleware_time(1), 0ms);
  EXPECT_EQ(r.ex->finished_at(), r.start + 137ms);
}

TEST(HookTime, AfterAWaitTheHookReadsItsClock) {
  Rig r;
  r.a->wait = true;
  ASSERT_TRUE(r.chain.assign({{r.a}, {r.b}}).ok());
  r.run();
  ASSERT_FALSE(r.done);
  r.clock.advance(5s);
  SteadyTime in_continuation{};
  FakeClock& clock = r.clock;
  r.a->resume.with([&](Exchange& ex) {
    in_continuation = ex.hook_time(clock);
    return Decision::next();
  });
  r.host->run_all();
  ASSERT_TRUE(r.done);
  EXPECT_EQ(in_continuation, r.start + 30ms + 5s) << "not the waiting hook's start";
  EXPECT_EQ(r.b->pre_seen, r.start + 30ms + 5s);
  EXPECT_EQ(r.ex->middleware_time(0), 30ms + 5s + 7ms);
}

TEST(HookTime, AnotherClockOrNoHookTimingReadsTheClockAsked) {
  Rig r(/*timing=*/false);
  ASSERT_TRUE(r.chain.assign({{r.a}, {r.b}}).ok());
  r.run();
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.b->pre_seen, r.start + 30ms);  // a fresh read: the runner read nothing
  EXPECT_EQ(r.a->post_seen, r.start + 130ms);

  Rig other;
  FakeClock elsewhere(SteadyTime{} + 10h);
  auto c = std::make_shared<Spends>("c", elsewhere, 0ms, 0ms);
  ASSERT_TRUE(other.chain.assign({{other.a}, {c}}).ok());
  other.run();
  EXPECT_EQ(c->pre_seen, SteadyTime{} + 10h) << "the chain's reading is of another clock";
}

// The host's clock, counting the chain's reads.
class Counting final : public Clock {
 public:
  explicit Counting(const FakeClock& inner) : inner_(inner) {}
  SteadyTime now() const override {
    ++reads;
    return inner_.now();
  }
  mutable int reads = 0;

 private:
  const FakeClock& inner_;
};

TEST(HookTime, TheChainReadsOncePerHookAndOncePerPhaseAlsoAcrossAWait) {
  for (bool wait : {false, true}) {
    Rig r;
    Counting counting(r.clock);
    r.host->set_clock(&counting);
    r.a->wait = wait;
    ASSERT_TRUE(r.chain.assign({{r.a}, {r.b}}).ok());
    r.run();
    if (wait) r.a->resume(Decision::next());
    r.host->run_all();
    ASSERT_TRUE(r.done);
    // reset (the request's start), pre: a phase start + 2 hooks, post: a phase start + 2 hooks.
    EXPECT_EQ(counting.reads, 1 + 3 + 3) << (wait ? "with a wait" : "without");
    EXPECT_EQ(r.ex->middleware_time(0), 37ms);
  }
}

}  // namespace
}  // namespace sluice
