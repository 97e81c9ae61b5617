// The conformance suite: one set of tests run against sluice's own server and every adapter
// (cpp-httplib). An adapter is done when it passes: order, early answers, exceptions and
// recover, the 500 when nobody answers, context values, observers seeing rejections, headers
// added in post_handle, and hooks that wait: resumed from another thread they continue on the
// request's own thread, may answer from there, and a lost Resume is a 500.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "support/conformance_backends.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::add_step;
using testing::Trail;

class Tagging : public Middleware {
 public:
  explicit Tagging(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  Decision pre_handle(Exchange& ex) override {
    add_step(ex, "pre:" + name_);
    if (sets_request_id) ex.context().set_request_id("req-" + name_);
    ex.request().set_header("X-From-Pre", name_);
    if (throws_in_pre) throw std::runtime_error("boom in " + name_);
    if (answer != 0) return ex.answer(answer, "text/plain", name_);
    return Decision::next();
  }
  void post_handle(Exchange& ex, std::chrono::nanoseconds) override {
    add_step(ex, "post:" + name_);
    ex.response().add_header("X-Post", name_);
    ex.response().set_header("X-Trail", ex.context().get<Trail>()->joined());
  }
  bool recover(Exchange& ex, const std::exception_ptr&) override {
    add_step(ex, "recover:" + name_);
    if (!recovers) return false;
    ex.answer(503, "text/plain", "recovered by " + name_);
    return true;
  }

  int answer = 0;
  bool throws_in_pre = false;
  bool recovers = false;
  bool sets_request_id = false;

 private:
  std::string name_;
};

// Waits in pre_handle (a timer, post_after) and in post_handle (resumed from another thread).
class Waiting : public Middleware {
 public:
  std::string_view name() const override { return "W"; }
  Decision pre_handle(Exchange& ex) override {
    add_step(ex, "pre:W");
    const auto ms = std::stoi(std::string(ex.request().header("X-Delay-Ms")));
    // std::function needs a copyable callable; the Resume itself is move-only.
    auto resume = std::make_shared<Resume>(ex.defer());
    ex.post_after(std::chrono::milliseconds(ms), [resume] { (*resume)(Decision::next()); });
    return Decision::wait();
  }
  void post_handle(Exchange& ex, std::chrono::nanoseconds) override {
    add_step(ex, "post:W");
    ex.response().set_header("X-Trail", ex.context().get<Trail>()->joined());
    std::thread([r = ex.defer()]() mutable { r(Decision::next()); }).detach();
  }
};

// An API-key check against a slow directory that answers on another thread: "bad" is
// refused from there, "lost" drops the Resume, any other key continues on the request's own
// thread (checked) and tells the handler which client called.
class KeyCheck : public Middleware {
 public:
  std::string_view name() const override { return "K"; }
  Decision pre_handle(Exchange& ex) override {
    add_step(ex, "pre:K");
    std::thread([key = std::string(ex.request().header("X-Api-Key")),
                 worker = std::this_thread::get_id(), resume = ex.defer()]() mutable {
      if (key == "bad") {
        resume.answer_error(401, "unauthorized", "a valid X-Api-Key is required");
      } else if (key != "lost") {
        resume.with([key, worker](Exchange& x) {
          add_step(x, std::this_thread::get_id() == worker ? "continue:K" : "continue:K:elsewhere");
          x.request().set_header("X-From-Pre", "client-" + key);
          return Decision::next();
        });
      }
    }).detach();
    return Decision::wait();
  }
};

struct Seen {
  int status;
  std::string answered_by;
  std::string route;
};

class Recorder : public Observer {
 public:
  void on_request_end(Exchange& ex) override {
    std::lock_guard lock(mutex_);
    seen_.push_back({ex.response().status(), std::string(ex.answered_by()),
                     ex.route() ? ex.route()->name : ""});
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Seen> seen_;
};

struct Native {
  static std::unique_ptr<testing::Backend> make() { return testing::make_native_backend(); }
};
struct Httplib {
  static std::unique_ptr<testing::Backend> make() { return testing::make_httplib_backend(); }
};

template <class Kind>
class Conformance : public ::testing::Test {
 protected:
  void start(std::vector<std::shared_ptr<Middleware>> mws) {
    chain =
        std::make_shared<Chain>("conformance", std::vector<std::shared_ptr<Observer>>{recorder});
    std::vector<ChainEntry> entries;
    for (auto& m : mws)
      entries.push_back({m, true});
    ASSERT_TRUE(chain->assign(std::move(entries)).ok());
    backend->start(chain);
    client = std::make_unique<httplib::Client>("127.0.0.1", backend->port());
  }
  httplib::Result get(const std::string& path, httplib::Headers headers = {}) {
    return client->Get(path.c_str(), headers);
  }

  std::unique_ptr<testing::Backend> backend = Kind::make();
  std::shared_ptr<Recorder> recorder = std::make_shared<Recorder>();
  std::shared_ptr<Chain> chain;
  std::unique_ptr<httplib::Client> client;
  std::shared_ptr<Tagging> a = std::make_shared<Tagging>("A");
  std::shared_ptr<Tagging> b = std::make_shared<Tagging>("B");
};

using Backends = ::testing::Types<Native, Httplib>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, Native> ? "native" : "httplib";
  }
};
TYPED_TEST_SUITE(Conformance, Backends, BackendNames);

TYPED_TEST(Conformance, RunsPreInOrderThenHandlerThenPostInReverse) {
  this->start({this->a, this->b});
  auto res = this->get("/x");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok");
  EXPECT_EQ(res->get_header_value("X-Trail"), "pre:A pre:B handler post:B post:A");
  ASSERT_EQ(res->get_header_value_count("X-Post"), 2u);
  EXPECT_EQ(res->get_header_value("X-Post", 0), "B");
  EXPECT_EQ(res->get_header_value("X-Post", 1), "A");
}

TYPED_TEST(Conformance, EarlyAnswerSkipsTheRestButPostRunsForEntered) {
  this->b->answer = 403;
  auto c = std::make_shared<Tagging>("C");
  this->start({this->a, this->b, c});
  auto res = this->get("/x");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  EXPECT_EQ(res->body, "B");
  EXPECT_EQ(res->get_header_value("X-Trail"), "pre:A pre:B post:B post:A");
}

TYPED_TEST(Conformance, ExceptionGoesToRecoverInnermostFirst) {
  this->b->throws_in_pre = true;
  this->a->recovers = true;
  this->start({this->a, this->b});
  auto res = this->get("/x");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "recovered by A");
  EXPECT_EQ(res->get_header_value("X-Trail"), "pre:A pre:B recover:B recover:A post:B post:A");
}

TYPED_TEST(Conformance, UnansweredExceptionIsA500WithJsonBody) {
  this->a->sets_request_id = true;
  this->backend->end.throws = true;
  this->start({this->a, this->b});
  auto res = this->get("/x");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  auto body = nlohmann::json::parse(res->body);
  EXPECT_EQ(body["error"], "internal_error");
  EXPECT_EQ(body["request_id"], "req-A");
  EXPECT_EQ(res->body.find("the handler failed"), std::string::npos) << "no internal details";
  EXPECT_EQ(res->get_header_value("X-Trail"),
            "pre:A pre:B handler recover:B recover:A post:B post:A");
}

TYPED_TEST(Conformance, HandlerSeesContextAndTheRequestAsMiddlewaresLeftIt) {
  this->a->sets_request_id = true;
  this->start({this->a, this->b});
  auto res = this->get("/x", {{"X-From-Pre", "client"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("X-End-Request-Id"), "req-A");
  EXPECT_EQ(res->get_header_value("X-Client-Ip"), "127.0.0.1");
  EXPECT_EQ(res->get_header_value("X-Seen-From-Pre"), "B");
}

TYPED_TEST(Conformance, ObserversSeeRejectionsAndAnswers) {
  this->b->answer = 429;
  this->start({this->a, this->b});
  ASSERT_TRUE(this->get("/x"));
  this->b->answer = 0;
  ASSERT_TRUE(this->get("/y"));
  auto seen = this->recorder->seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].status, 429);
  EXPECT_EQ(seen[0].answered_by, "B");
  EXPECT_EQ(seen[0].route, "conformance");
  EXPECT_EQ(seen[1].status, 200);
  EXPECT_EQ(seen[1].answered_by, "");
}

TYPED_TEST(Conformance, WaitingHooksResumeAndDoNotHoldOtherRequests) {
  this->start({this->a, std::make_shared<Waiting>()});
  auto res = this->get("/x", {{"X-Delay-Ms", "20"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("X-Trail"), "pre:A pre:W handler post:W post:A");
  EXPECT_EQ(res->get_header_value("X-Post"), "A") << "A's post_handle ran after W resumed";

  std::atomic<bool> slow_done{false};
  std::thread slow([&] {
    httplib::Client c("127.0.0.1", this->backend->port());
    auto r = c.Get("/slow", httplib::Headers{{"X-Delay-Ms", "800"}});
    EXPECT_TRUE(r && r->status == 200);
    slow_done = true;
  });
  std::this_thread::sleep_for(50ms);  // the slow request is parked in its timer by now
  auto fast = this->get("/fast", {{"X-Delay-Ms", "0"}});
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->status, 200);
  EXPECT_FALSE(slow_done.load()) << "the fast request was not held behind the waiting one";
  slow.join();
  EXPECT_TRUE(slow_done.load());
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TYPED_TEST(Conformance, AWaitingHookAnswersFromItsCallback) {
  this->start({this->a, std::make_shared<KeyCheck>()});
  auto res = this->get("/x", {{"X-Api-Key", "bad"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  auto body = nlohmann::json::parse(res->body);
  EXPECT_EQ(body["error"], "unauthorized");
  EXPECT_TRUE(body.contains("request_id"));
  EXPECT_EQ(res->get_header_value("X-Trail"), "pre:A pre:K post:A") << "the handler was skipped";
  auto seen = this->recorder->seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].status, 401);
  EXPECT_EQ(seen[0].answered_by, "K");
}

TYPED_TEST(Conformance, AWaitingHookContinuesOnTheRequestsOwnThread) {
  this->start({this->a, std::make_shared<KeyCheck>()});
  auto res = this->get("/x", {{"X-Api-Key", "k-1"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("X-Trail"), "pre:A pre:K continue:K handler post:A");
  EXPECT_EQ(res->get_header_value("X-Seen-From-Pre"), "client-k-1");
}

TYPED_TEST(Conformance, ALostResumeIsA500) {
  this->start({this->a, std::make_shared<KeyCheck>()});
  auto res = this->get("/x", {{"X-Api-Key", "lost"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(nlohmann::json::parse(res->body)["error"], "internal_error");
  EXPECT_EQ(res->get_header_value("X-Trail"), "pre:A pre:K recover:A post:A");
}

}  // namespace
}  // namespace sluice
