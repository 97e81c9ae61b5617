// The middleware contract: order, early answers, exceptions and recover, waiting hooks, chain
// edits and snapshot lifetimes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"

namespace sluice {
namespace {

using testing::ManualHost;
using Log = std::vector<std::string>;

enum class Fail { kNone, kPre, kPost };

class Tagging : public Middleware {
 public:
  Tagging(std::string name, Log& log) : name_(std::move(name)), log_(log) {}
  std::string_view name() const override { return name_; }
  Decision pre_handle(Exchange& ex) override {
    log_.push_back("pre:" + name_);
    if (fail == Fail::kPre) throw std::runtime_error("boom in " + name_);
    if (answer) return ex.answer(answer, "text/plain", name_);
    if (wait) {
      resume = ex.defer();
      return Decision::wait();
    }
    return Decision::next();
  }
  void post_handle(Exchange& ex, std::chrono::nanoseconds) override {
    log_.push_back("post:" + name_);
    if (fail == Fail::kPost) throw std::runtime_error("boom in post " + name_);
    ex.response().add_header("X-Post", name_);
  }
  bool recover(Exchange& ex, const std::exception_ptr&) override {
    log_.push_back("recover:" + name_);
    if (!recovers) return false;
    ex.answer(503, "text/plain", "recovered by " + name_);
    return true;
  }

  int answer = 0;
  bool wait = false;
  bool recovers = false;
  Fail fail = Fail::kNone;
  Resume resume;

 private:
  std::string name_;
  Log& log_;
};

class TagHandler : public Handler {
 public:
  explicit TagHandler(Log& log) : log_(log) {}
  std::string_view kind() const override { return "tag"; }
  Decision handle(Exchange& ex) override {
    log_.push_back("handler");
    if (throws) throw std::runtime_error("handler failed");
    return ex.answer(200, "text/plain", "ok");
  }
  bool throws = false;

 private:
  Log& log_;
};

struct Fixture {
  Log log;
  std::shared_ptr<Tagging> a = std::make_shared<Tagging>("A", log);
  std::shared_ptr<Tagging> b = std::make_shared<Tagging>("B", log);
  std::shared_ptr<Tagging> c = std::make_shared<Tagging>("C", log);
  TagHandler handler{log};
  Chain chain{"test"};
  std::shared_ptr<ManualHost> host = std::make_shared<ManualHost>();
  bool done = false;

  Fixture() {
    EXPECT_TRUE(chain.use(a).ok());
    EXPECT_TRUE(chain.use(b).ok());
  }
  Exchange& run() {
    auto& ex = host->exchange("GET", "/");
    auto lease = chain.acquire();
    ExchangeDriver(ex).run(*lease, handler, [this] { done = true; });
    host->run_all();
    return ex;
  }
};

TEST(ChainOrder, PreInOrderPostInReverse) {
  Fixture f;
  auto& ex = f.run();
  EXPECT_TRUE(f.done);
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "handler", "post:B", "post:A"}));
  EXPECT_EQ(ex.response().status(), 200);
}

TEST(ChainOrder, EarlyAnswerSkipsRestAndHandlerButPostRunsForEntered) {
  Fixture f;
  f.chain.use(f.c);
  f.b->answer = 429;
  auto& ex = f.run();
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "post:B", "post:A"}));
  EXPECT_EQ(ex.response().status(), 429);
  EXPECT_EQ(ex.answered_by(), "B");
}

// A middleware that declares one of its hooks empty (Middleware::skip_hooks). Its hooks log
// anyway, so the test sees whether the runner called them.
class OneSided final : public Tagging {
 public:
  OneSided(std::string name, Log& log, bool skip_pre, bool skip_post)
      : Tagging(std::move(name), log) {
    skip_hooks(skip_pre, skip_post);
  }
};

TEST(ChainOrder, DeclaredEmptyHooksAreNotCalledAndAPreSkippedMiddlewareStillCountsAsEntered) {
  Fixture f;
  auto post_only = std::make_shared<OneSided>("P", f.log, true, false);
  auto pre_only = std::make_shared<OneSided>("Q", f.log, false, true);
  auto neither = std::make_shared<OneSided>("N", f.log, true, true);  // at most one is skipped
  EXPECT_FALSE(post_only->calls_pre_handle());
  EXPECT_TRUE(post_only->calls_post_handle());
  EXPECT_TRUE(pre_only->calls_pre_handle());
  EXPECT_FALSE(pre_only->calls_post_handle());
  EXPECT_FALSE(neither->calls_pre_handle());
  EXPECT_TRUE(neither->calls_post_handle());
  ASSERT_TRUE(f.chain.use(post_only).ok());
  ASSERT_TRUE(f.chain.use(pre_only).ok());
  ASSERT_TRUE(f.chain.use(neither).ok());
  auto& ex = f.run();
  EXPECT_EQ(f.log,
            (Log{"pre:A", "pre:B", "pre:Q", "handler", "post:N", "post:P", "post:B", "post:A"}));
  EXPECT_EQ(ex.response().status(), 200);

  // An answer after a skipped pre_handle: that middleware was entered, its post_handle runs.
  Fixture g;
  auto answers = std::make_shared<OneSided>("Q", g.log, false, true);
  answers->answer = 429;
  ASSERT_TRUE(g.chain.use(std::make_shared<OneSided>("P", g.log, true, false)).ok());
  ASSERT_TRUE(g.chain.use(answers).ok());
  ASSERT_TRUE(g.chain.use(g.c).ok());
  auto& answered = g.run();
  EXPECT_EQ(g.log, (Log{"pre:A", "pre:B", "pre:Q", "post:P", "post:B", "post:A"}));
  EXPECT_EQ(answered.response().status(), 429);
  EXPECT_EQ(answered.answered_by(), "Q");
}

TEST(ChainOrder, UnansweredExceptionIn500JsonAndPostStillRuns) {
  Fixture f;
  f.b->fail = Fail::kPre;
  auto& ex = f.run();
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "recover:B", "recover:A", "post:B", "post:A"}));
  EXPECT_EQ(ex.response().status(), 500);
  auto body = nlohmann::json::parse(ex.response().body());
  EXPECT_EQ(body["error"], "internal_error");
  EXPECT_EQ(ex.response().body().find("boom"), std::string::npos) << "no internals leak";
}

TEST(ChainOrder, HandlerExceptionRecoveredInnermostFirst) {
  Fixture f;
  f.a->recovers = true;
  f.b->recovers = true;
  f.handler.throws = true;
  auto& ex = f.run();
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "handler", "recover:B", "post:B", "post:A"}));
  EXPECT_EQ(ex.response().status(), 503);
  EXPECT_EQ(ex.response().body(), "recovered by B");
}

TEST(ChainOrder, ExceptionInInnerPostGoesToOuterRecover) {
  Fixture f;
  f.a->recovers = true;
  f.b->fail = Fail::kPost;
  auto& ex = f.run();
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "handler", "post:B", "recover:A", "post:A"}));
  EXPECT_EQ(ex.response().status(), 503);
}

TEST(ChainOrder, WaitingHookResumesInOrder) {
  Fixture f;
  f.a->wait = true;
  auto& ex = f.run();
  EXPECT_FALSE(f.done);
  EXPECT_EQ(f.log, (Log{"pre:A"}));
  f.a->resume(Decision::next());
  f.host->run_all();
  EXPECT_TRUE(f.done);
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "handler", "post:B", "post:A"}));
  EXPECT_EQ(ex.response().status(), 200);
}

TEST(ChainOrder, LostResumeAnswers500InsteadOfHanging) {
  Fixture f;
  f.a->wait = true;
  auto& ex = f.run();
  f.a->resume = Resume();  // the callback is dropped
  f.host->run_all();
  EXPECT_TRUE(f.done);
  EXPECT_EQ(ex.response().status(), 500);
}

TEST(ChainOrder, CancelDropsLateResume) {
  Fixture f;
  f.b->wait = true;
  auto& ex = f.run();
  ExchangeDriver(ex).cancel();
  EXPECT_TRUE(f.done);
  EXPECT_EQ(ex.response().status(), 499);
  f.b->resume(Decision::next());  // late: must be ignored
  f.host->run_all();
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "post:B", "post:A"}));
}

TEST(ResumeAnswers, AnswerErrorStopsTheChainWithTheAnswer) {
  Fixture f;
  f.chain.use(f.c);
  f.b->wait = true;
  auto& ex = f.run();
  f.b->resume.answer_error(401, "unauthorized", "a valid key is required");
  EXPECT_FALSE(f.done) << "written on the request's executor, not by the caller";
  f.host->run_all();
  EXPECT_TRUE(f.done);
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "post:B", "post:A"}));
  EXPECT_EQ(ex.response().status(), 401);
  EXPECT_EQ(nlohmann::json::parse(ex.response().body())["error"], "unauthorized");
  EXPECT_EQ(ex.detail(), "unauthorized");
  EXPECT_EQ(ex.answered_by(), "B");
}

TEST(ResumeAnswers, ContinuationDecidesLikeTheHook) {
  Fixture f;
  f.a->wait = true;
  auto& ex = f.run();
  f.a->resume.with([](Exchange& x) {
    x.request().set_header("X-Client", "app");
    return Decision::next();
  });
  f.host->run_all();
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "handler", "post:B", "post:A"}));
  EXPECT_EQ(ex.request().header("X-Client"), "app");
  EXPECT_EQ(ex.response().status(), 200);
}

TEST(ResumeAnswers, ContinuationMayWaitAgain) {
  Fixture f;
  f.a->wait = true;
  auto& ex = f.run();
  Resume second;
  f.a->resume.with([&second](Exchange& x) {
    second = x.defer();
    return Decision::wait();
  });
  f.host->run_all();
  EXPECT_FALSE(f.done);
  EXPECT_EQ(f.log, (Log{"pre:A"}));
  second.answer(403, "text/plain", "no");
  f.host->run_all();
  EXPECT_EQ(f.log, (Log{"pre:A", "post:A"}));
  EXPECT_EQ(ex.response().status(), 403);
  EXPECT_EQ(ex.response().body(), "no");
}

TEST(ResumeAnswers, ContinuationExceptionGoesToRecover) {
  Fixture f;
  f.a->recovers = true;
  f.b->wait = true;
  auto& ex = f.run();
  f.b->resume.with([](Exchange&) -> Decision { throw std::runtime_error("lookup broke"); });
  f.host->run_all();
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "recover:B", "recover:A", "post:B", "post:A"}));
  EXPECT_EQ(ex.response().status(), 503);
}

TEST(ResumeAnswers, WaitWithoutDeferInAContinuationIsA500) {
  Fixture f;
  f.b->wait = true;
  auto& ex = f.run();
  f.b->resume.with([](Exchange&) { return Decision::wait(); });
  f.host->run_all();
  EXPECT_TRUE(f.done);
  EXPECT_EQ(ex.response().status(), 500);
}

TEST(ResumeAnswers, NoContinuationRunsForACancelledRequest) {
  Fixture f;
  f.b->wait = true;
  auto& ex = f.run();
  ExchangeDriver(ex).cancel();
  bool ran = false;
  f.b->resume.with([&ran](Exchange& x) {
    ran = true;
    return x.answer(401, "text/plain", "late");
  });
  f.host->run_all();
  EXPECT_FALSE(ran);
  EXPECT_EQ(ex.response().status(), 499);
}

TEST(ChainEdits, InsertRemoveReplaceEnableDisable) {
  Fixture f;
  ASSERT_TRUE(f.chain.insert_before("A", f.c).ok());
  auto names = [&] {
    std::string s;
    for (auto* m : f.chain.current()->active())
      s += std::string(m->name());
    return s;
  };
  EXPECT_EQ(names(), "CAB");
  ASSERT_TRUE(f.chain.remove("C").ok());
  ASSERT_TRUE(f.chain.insert_after("A", f.c).ok());
  EXPECT_EQ(names(), "ACB");
  ASSERT_TRUE(f.chain.disable("C").ok());
  EXPECT_EQ(names(), "AB");
  ASSERT_TRUE(f.chain.enable("C").ok());
  EXPECT_EQ(names(), "ACB");
  auto d = std::make_shared<Tagging>("D", f.log);
  ASSERT_TRUE(f.chain.replace("C", d).ok());
  EXPECT_EQ(names(), "ADB");
  EXPECT_EQ(f.chain.use(std::make_shared<Tagging>("A", f.log)).error,
            "a middleware named \"A\" is already in the chain");
  EXPECT_EQ(f.chain.remove("nope").error, "no middleware named \"nope\" in the chain");
}

class FailingInit : public Middleware {
 public:
  std::string_view name() const override { return "bad"; }
  InitResult init() override { return InitResult::failure("missing secret"); }
  Decision pre_handle(Exchange&) override { return Decision::next(); }
};

TEST(ChainEdits, InitFailureRefusesTheEdit) {
  Fixture f;
  auto before = f.chain.current()->version();
  EXPECT_EQ(f.chain.use(std::make_shared<FailingInit>()).error, "bad: init failed: missing secret");
  EXPECT_EQ(f.chain.current()->version(), before);
}

TEST(ChainSnapshots, RequestFinishesOnItsSnapshotAndOldOneIsFreedAfter) {
  Fixture f;
  std::weak_ptr<Tagging> weak_b = f.b;
  f.a->wait = true;
  auto& ex = f.host->exchange("GET", "/");
  auto lease = f.chain.acquire();
  ExchangeDriver(ex).run(*lease, f.handler, [&] { f.done = true; });
  ASSERT_TRUE(f.chain.remove("B").ok());  // while the request waits
  f.b.reset();
  EXPECT_FALSE(weak_b.expired()) << "the waiting request's snapshot still holds B";
  f.a->resume(Decision::next());
  f.host->run_all();
  EXPECT_EQ(f.log, (Log{"pre:A", "pre:B", "handler", "post:B", "post:A"}));
  lease.release();
  auto next = f.chain.acquire();  // this thread moves to the new snapshot
  next.release();
  EXPECT_TRUE(weak_b.expired()) << "the old snapshot dies after its last request";
}

TEST(ContextSlots, TypedSlotsArePrivateByType) {
  struct Mine {
    int v;
  };
  struct Other {
    int v;
  };
  Context ctx;
  ctx.emplace<Mine>(Mine{7});
  ASSERT_NE(ctx.get<Mine>(), nullptr);
  EXPECT_EQ(ctx.get<Mine>()->v, 7);
  EXPECT_EQ(ctx.get<Other>(), nullptr);
  ctx.emplace<Mine>(Mine{8});
  EXPECT_EQ(ctx.get<Mine>()->v, 8);
  ctx.erase<Mine>();
  EXPECT_EQ(ctx.get<Mine>(), nullptr);
  ctx.tighten_deadline(SteadyTime{} + std::chrono::seconds(10));
  ctx.tighten_deadline(SteadyTime{} + std::chrono::seconds(20));
  EXPECT_EQ(*ctx.deadline(), SteadyTime{} + std::chrono::seconds(10));
}

// A value's block is kept after erase and clear (Context::begin) and the next value of its type
// is built there; values still die at erase and clear, the latest emplaced first.
TEST(ContextSlots, ATypesBlockIsReusedAndValuesDieLatestFirst) {
  struct Counted {
    Counted(Log& log, std::string name) : log(&log), name(std::move(name)) {}
    ~Counted() { log->push_back("~" + name); }
    Log* log;
    std::string name;
  };
  struct First : Counted {
    using Counted::Counted;
  };
  struct Second : Counted {
    using Counted::Counted;
  };
  struct Throws {
    Throws() { throw std::runtime_error("no"); }
  };
  Log log;
  Context ctx;
  const void* block = &ctx.emplace<First>(log, "first-1");
  ctx.emplace<Second>(log, "second-1");
  ctx.begin(SteadyTime{}, std::chrono::system_clock::time_point{});  // the next request
  EXPECT_EQ(log, (Log{"~second-1", "~first-1"}));
  EXPECT_EQ(ctx.get<First>(), nullptr);
  EXPECT_EQ(ctx.get<Second>(), nullptr);

  log.clear();
  ctx.emplace<Second>(log, "second-2");  // now the older one
  EXPECT_EQ(&ctx.emplace<First>(log, "first-2"), block) << "the first request's block";
  EXPECT_EQ(ctx.get<First>()->name, "first-2");
  ctx.emplace<First>(log, "first-3");  // replaces: the old value dies first
  EXPECT_EQ(log, (Log{"~first-2"}));
  ctx.erase<Second>();
  EXPECT_EQ(ctx.get<Second>(), nullptr);
  EXPECT_EQ(ctx.get<First>()->name, "first-3");
  EXPECT_THROW(ctx.emplace<Throws>(), std::runtime_error);
  EXPECT_EQ(ctx.get<Throws>(), nullptr);
  ctx.begin(SteadyTime{}, std::chrono::system_clock::time_point{});
  EXPECT_EQ(log, (Log{"~first-2", "~second-2", "~first-3"}));
  EXPECT_EQ(ctx.get<First>(), nullptr);
}

// The connection's address is the request's client and peer address until something sets them
// (real_ip, a PROXY header): those copies are the context's own, and the next request starts
// from the connection's address again.
TEST(ContextAddresses, StartAsTheConnectionsAddressAndSetOnesAreCopies) {
  Context ctx;
  std::string connection = "192.0.2.7";
  ctx.begin(SteadyTime{}, std::chrono::system_clock::time_point{}, connection);
  EXPECT_EQ(ctx.client_ip(), "192.0.2.7");
  EXPECT_EQ(ctx.peer_ip(), "192.0.2.7");
  {
    std::string vouched = "203.0.113.9";
    ctx.set_client_ip(vouched);
    ctx.set_peer_ip(std::string("198.51.100.3"));
    vouched = "overwritten";
  }
  EXPECT_EQ(ctx.client_ip(), "203.0.113.9");
  EXPECT_EQ(ctx.peer_ip(), "198.51.100.3");
  ctx.set_client_ip(ctx.peer_ip());
  EXPECT_EQ(ctx.client_ip(), "198.51.100.3");
  ctx.begin(SteadyTime{}, std::chrono::system_clock::time_point{}, connection);
  EXPECT_EQ(ctx.client_ip(), "192.0.2.7");
  EXPECT_EQ(ctx.peer_ip(), "192.0.2.7");
  ctx.begin(SteadyTime{}, std::chrono::system_clock::time_point{});
  EXPECT_EQ(ctx.client_ip(), "");
  EXPECT_EQ(ctx.peer_ip(), "");
}

TEST(RequestIds, ValidationAndGeneration) {
  EXPECT_TRUE(is_valid_request_id("abc-123_x.y:z"));
  EXPECT_FALSE(is_valid_request_id(""));
  EXPECT_FALSE(is_valid_request_id("a b"));
  EXPECT_FALSE(is_valid_request_id("x\r\nSet-Cookie: a"));
  EXPECT_FALSE(is_valid_request_id(std::string(129, 'a')));
  auto a = generate_request_id();
  auto b = generate_request_id();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(is_valid_request_id(a));
}

// Ids are stepped in their hex digits (an odometer): every carry must give the next number.
TEST(RequestIds, ConsecutiveIdsCountUpInHex) {
  Context ctx;
  ctx.set_new_request_id();
  std::string previous(ctx.request_id());
  for (int i = 0; i < 5000; ++i) {
    ctx.set_new_request_id();
    const std::string id(ctx.request_id());
    ASSERT_EQ(id.size(), 32u);
    ASSERT_TRUE(is_valid_request_id(id));
    EXPECT_EQ(id.substr(0, 16), previous.substr(0, 16));  // the thread's prefix
    const auto before = std::stoull(previous.substr(16), nullptr, 16);
    const auto after = std::stoull(id.substr(16), nullptr, 16);
    ASSERT_EQ(after, before + 1) << previous << " -> " << id;
    previous = id;
  }
  EXPECT_NE(generate_request_id(), previous);
}

}  // namespace
}  // namespace sluice
