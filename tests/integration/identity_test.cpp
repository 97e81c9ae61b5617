// Authentication through the real binary: jwt feeding rate_limit `key: user` (one bucket per
// user) and the access log, basic_auth with its hashing pool, and ext_auth against a real
// loopback authorization service that allows, denies, or is too slow (failure mode on and off).
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "security/password_hash.hpp"
#include "support/jwt_signer.hpp"
#include "support/raw_client.hpp"
#include "support/served_upstream.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

long long now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<json> log_lines(const std::string& path, std::size_t at_least) {
  std::vector<json> out;
  for (int i = 0; i < 200; ++i) {
    out.clear();
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
      out.push_back(json::parse(line));
    if (out.size() >= at_least) break;
    std::this_thread::sleep_for(25ms);  // the access log is written by its own thread
  }
  return out;
}

TEST(Identity, JwtUsersGetTheirOwnRateLimitBucketsAndAppearInTheAccessLog) {
  TempDir dir;
  const std::string jwks = dir.write("jwks.json", test_signer().jwks());
  const std::string log = dir.file("access.log");
  // One worker: the test reads the log lines in request order, and lines of two workers are in
  // the order of their batches, not of their requests (docs/OBSERVABILITY.md, access log).
  SluiceProcess gw("workers: 1\naccess_log: { path: " + log + " }\n" + R"(
routes:
  - name: api
    middlewares:
      - { type: jwt, jwks_file: )" +
                   jwks +
                   R"(, tier_claim: plan, user_header: X-User }
      - { type: rate_limit, limits: [{ name: per_user, key: user, rate: 0.001, burst: 2 }] }
    handler: { type: echo }
)");
  auto token = [](const std::string& alg, const std::string& sub) {
    return "Bearer " +
           test_signer().token(alg, {{"sub", sub}, {"plan", "gold"}, {"exp", now_s() + 300}});
  };
  httplib::Client c("127.0.0.1", gw.port());
  // Every request from one client address: only the user tells the buckets apart.
  const httplib::Headers alice = {{"Authorization", token("RS256", "alice")}};
  const httplib::Headers bob = {{"Authorization", token("ES256", "bob")}};
  auto first = c.Get("/", alice);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(json::parse(first->body)["headers"]["x-user"][0], "alice");
  EXPECT_EQ(c.Get("/", alice)->status, 200);
  auto limited = c.Get("/", alice);
  EXPECT_EQ(limited->status, 429) << "alice's burst of 2 is spent";
  EXPECT_EQ(c.Get("/", bob)->status, 200) << "bob has a bucket of his own";
  EXPECT_EQ(c.Get("/", bob)->status, 200);
  EXPECT_EQ(c.Get("/", bob)->status, 429);
  auto anonymous = c.Get("/");
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_EQ(anonymous->get_header_value("WWW-Authenticate"), R"(Bearer realm="sluice")");
  EXPECT_EQ(json::parse(anonymous->body)["error"], "jwt_missing");
  auto forged = c.Get("/", {{"Authorization", token("HS256", "alice") + "x"}});
  EXPECT_EQ(forged->status, 401);
  EXPECT_EQ(forged->get_header_value("WWW-Authenticate"),
            R"(Bearer realm="sluice", error="invalid_token")");

  const auto lines = log_lines(log, 8);
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(lines[0]["user"], "alice");
  EXPECT_EQ(lines[0]["user_tier"], "gold");
  EXPECT_EQ(lines[2]["user"], "alice");
  EXPECT_EQ(lines[2]["status_code"], 429);
  EXPECT_EQ(lines[3]["user"], "bob");
  EXPECT_FALSE(lines[6].contains("user"));
  EXPECT_EQ(lines[6]["detail"], "jwt_missing");
  EXPECT_EQ(lines[7]["detail"], "jwt_bad_signature");
}

TEST(Identity, BasicAuthAcceptsAndRefuses) {
  TempDir dir;
  const std::string users = dir.write(
      "users.txt", "alice:" + security::PasswordHash::make("wonderland", 20000).text() + ":vip\n");
  SluiceProcess gw(R"(
routes:
  - name: api
    middlewares:
      - { type: basic_auth, users_file: )" +
                   users + R"(, realm: staff, user_header: X-User, tier_header: X-Tier }
    handler: { type: echo }
)");
  httplib::Client c("127.0.0.1", gw.port());
  c.set_basic_auth("alice", "wonderland");
  for (int i = 0; i < 2; ++i) {  // the second one is answered from the cache of verified passwords
    auto ok = c.Get("/");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    const auto headers = json::parse(ok->body)["headers"];
    EXPECT_EQ(headers["x-user"][0], "alice");
    EXPECT_EQ(headers["x-tier"][0], "vip");
    EXPECT_FALSE(headers.contains("authorization"));
  }
  c.set_basic_auth("alice", "queen of hearts");
  auto wrong = c.Get("/");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(wrong->get_header_value("WWW-Authenticate"), R"(Basic realm="staff", charset="UTF-8")");
  EXPECT_EQ(json::parse(wrong->body)["error"], "basic_auth_invalid");
  httplib::Client anonymous("127.0.0.1", gw.port());
  auto none = anonymous.Get("/", {{"X-User", "alice"}});
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"], "basic_auth_missing");
}

TEST(Identity, HashPasswordMakesALineBasicAuthAccepts) {
  TempDir dir;
  const auto pw = dir.write("pw", "correct horse\n");
  auto made = run_sluice("hash-password --iterations 2000 < " + pw);
  ASSERT_EQ(made.status, 0) << made.output;
  ASSERT_TRUE(made.output.starts_with("$pbkdf2-sha256$2000$")) << made.output;
  const std::string hash = made.output.substr(0, made.output.find('\n'));
  const auto users = dir.write("users.txt", "alice:" + hash + "\n");
  SluiceProcess gw(R"(
routes:
  - name: api
    middlewares: [ { type: basic_auth, users_file: )" +
                   users + R"( } ]
    handler: { type: respond, status: 204 }
)");
  httplib::Client c("127.0.0.1", gw.port());
  c.set_basic_auth("alice", "correct horse");
  EXPECT_EQ(c.Get("/")->status, 204);
  c.set_basic_auth("alice", "correct horse\n");
  EXPECT_EQ(c.Get("/")->status, 401);
  EXPECT_EQ(run_sluice("hash-password --iterations 10 < " + pw).status, 2);
}

// An authorization service on loopback: "Bearer good" is alice (vip), "Bearer slow" answers
// after 1 s, "Bearer broken" is a 500, anything else a 401 with a challenge of its own.
class AuthService {
 public:
  AuthService() {
    server_.Get("/check", [this](const httplib::Request& req, httplib::Response& res) {
      ++calls;
      {
        std::lock_guard lock(mutex_);
        last_forwarded_uri_ = req.get_header_value("X-Forwarded-Uri");
        last_cookie_ = req.get_header_value("Cookie");
      }
      const auto auth = req.get_header_value("Authorization");
      if (auth == "Bearer slow") std::this_thread::sleep_for(1000ms);
      if (auth == "Bearer good" || auth == "Bearer slow") {
        res.set_header("X-User", "alice");
        res.set_header("X-User-Tier", "vip");
        res.set_header("X-Not-Copied", "1");
        res.status = 200;
      } else if (auth == "Bearer broken") {
        res.status = 500;
      } else {
        res.status = 401;
        res.set_header("WWW-Authenticate", R"(Bearer realm="corp")");
        res.set_content(R"({"why":"unknown token"})", "application/json");
      }
    });
    served_.emplace(server_);
  }
  int port() const { return served_->port(); }
  std::atomic<int> calls{0};
  // Under a lock: requests overlap (a slow one with the next), and their handlers run on
  // cpp-httplib's threads (ThreadSanitizer reported two handlers writing these at once).
  std::string last_forwarded_uri() const {
    std::lock_guard lock(mutex_);
    return last_forwarded_uri_;
  }
  std::string last_cookie() const {
    std::lock_guard lock(mutex_);
    return last_cookie_;
  }

 private:
  mutable std::mutex mutex_;
  std::string last_forwarded_uri_, last_cookie_;
  httplib::Server server_;
  std::optional<ServedUpstream> served_;  // after server_: stopped before it is destroyed
};

std::string ext_auth_config(int port, bool failure_mode_allow) {
  return R"(
workers: 1
routes:
  - name: api
    middlewares:
      - type: ext_auth
        address: "127.0.0.1:)" +
         std::to_string(port) + R"("
        path: /check
        timeout_ms: 400
        request_headers: [Authorization]
        response_headers: [X-User, X-User-Tier]
        user_header: X-User
        tier_header: X-User-Tier
        failure_mode_allow: )" +
         (failure_mode_allow ? "true" : "false") + R"(
      - { type: rate_limit, limits: [{ key: tier, rate: 1000 }] }
    handler: { type: echo }
)";
}

TEST(Identity, ExtAuthAllowsCopiesHeadersAndPassesDenialsThrough) {
  AuthService auth;
  SluiceProcess gw(ext_auth_config(auth.port(), false));
  httplib::Client c("127.0.0.1", gw.port());
  auto ok = c.Get("/orders?id=7", {{"Authorization", "Bearer good"},
                                   {"Cookie", "secret=1"},
                                   {"X-User", "mallory"},
                                   {"X-Not-Copied", "client"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  const auto headers = json::parse(ok->body)["headers"];
  EXPECT_EQ(headers["x-user"], json::array({"alice"})) << "the client's X-User is replaced";
  EXPECT_EQ(headers["x-user-tier"], json::array({"vip"}));
  EXPECT_EQ(headers["x-not-copied"], json::array({"client"})) << "only the chosen headers";
  EXPECT_EQ(auth.last_forwarded_uri(), "/orders?id=7");
  EXPECT_EQ(auth.last_cookie(), "") << "Cookie is not in request_headers";

  auto denied = c.Get("/orders", {{"Authorization", "Bearer bad"}});
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 401);
  EXPECT_EQ(denied->body, R"({"why":"unknown token"})");
  EXPECT_EQ(denied->get_header_value("WWW-Authenticate"), R"(Bearer realm="corp")");
  EXPECT_EQ(denied->get_header_value("Content-Type"), "application/json");

  // The service failing (a 500, or slower than timeout_ms) is not a denial: 503.
  auto broken = c.Get("/", {{"Authorization", "Bearer broken"}});
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->status, 503);
  EXPECT_EQ(json::parse(broken->body)["error"], "ext_auth_unavailable");
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = c.Get("/", {{"Authorization", "Bearer slow"}});
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 503);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms) << "timeout_ms: 400";
  // The worker was not blocked meanwhile: with one worker, another request is answered at once.
  std::thread waiting([&] {
    httplib::Client c2("127.0.0.1", gw.port());
    c2.Get("/", {{"Authorization", "Bearer slow"}});
  });
  std::this_thread::sleep_for(50ms);
  const auto t1 = std::chrono::steady_clock::now();
  auto during = c.Get("/", {{"Authorization", "Bearer good"}});
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 250ms)
      << "a blocked worker would answer after the other's 400 ms timeout";
  EXPECT_EQ(during->status, 200);
  waiting.join();

  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto m = admin.Get("/metrics");
  ASSERT_TRUE(m);
  for (
      const char* line :
      {R"(sluice_auth_decisions_total{middleware="ext_auth",result="allowed",type="ext_auth"} 2)",
       R"(sluice_auth_decisions_total{middleware="ext_auth",result="denied",type="ext_auth"} 1)",
       R"(sluice_auth_decisions_total{middleware="ext_auth",result="failed_closed",type="ext_auth"} 3)"})
    EXPECT_NE(m->body.find(line), std::string::npos) << line << "\n" << m->body;
}

TEST(Identity, ExtAuthWaitsNoLongerThanTheRequestsDeadline) {
  // ext_auth's own timeout (5 s) is longer than the slow service (1 s): only the request's
  // deadline (500 ms) can end the check before the service allows it, so the 503 alone shows
  // the deadline was honoured, and the time that it came before the service's answer. (It was
  // a 100 ms deadline against ext_auth's 400 ms, told apart by a 350 ms bound, and the good
  // token's check had to fit in 100 ms: too little room on a loaded machine, where it failed.)
  AuthService auth;
  std::string config = ext_auth_config(auth.port(), false);
  const std::string own_timeout = "timeout_ms: 400";
  config.replace(config.find(own_timeout), own_timeout.size(), "timeout_ms: 5000");
  const std::string first = "    middlewares:\n";
  config.replace(config.find(first), first.size(),
                 first + "      - { type: timeout, timeout_ms: 500 }\n");
  SluiceProcess gw(config);
  httplib::Client c("127.0.0.1", gw.port());
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = c.Get("/", {{"Authorization", "Bearer slow"}});
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 503) << "the deadline ended the check; without it the service allows";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms) << "before the service's answer";
  EXPECT_EQ(c.Get("/", {{"Authorization", "Bearer good"}})->status, 200)
      << "a check that answers within the deadline passes";
}

TEST(Identity, ExtAuthFailureModeAllowLetsRequestsPassMarked) {
  AuthService auth;
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw("access_log: { path: " + log + " }\n" + ext_auth_config(auth.port(), true));
  httplib::Client c("127.0.0.1", gw.port());
  auto slow = c.Get("/", {{"Authorization", "Bearer slow"}, {"X-User", "mallory"}});
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 200);
  EXPECT_FALSE(json::parse(slow->body)["headers"].contains("x-user"))
      << "no identity when the service did not answer";
  auto denied = c.Get("/", {{"Authorization", "Bearer bad"}});
  EXPECT_EQ(denied->status, 401) << "failure_mode_allow does not turn a denial into a pass";
  const auto lines = log_lines(log, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["detail"], "ext_auth_failed_open");
  EXPECT_FALSE(lines[0].contains("user"));
  EXPECT_EQ(lines[1]["detail"], "ext_auth_denied");
  EXPECT_NE(gw.log().find("ext_auth: the authorization service of \"ext_auth\" failed (timed out)"),
            std::string::npos)
      << gw.log();
}

TEST(Identity, AClientLeavingDuringTheCheckIsLogged499AndHarmsNothing) {
  AuthService auth;
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw("access_log: { path: " + log + " }\n" + ext_auth_config(auth.port(), true));
  {
    RawClient leaving(gw.port());
    leaving.send("GET /gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer slow\r\n\r\n");
    std::this_thread::sleep_for(100ms);  // the check is in flight (the service takes 1 s)
  }
  const auto lines = log_lines(log, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["status_code"], 499);
  EXPECT_EQ(lines[0]["path"], "/gone");
  httplib::Client c("127.0.0.1", gw.port());
  auto after = c.Get("/", {{"Authorization", "Bearer good"}});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_TRUE(gw.running());
}

TEST(Identity, AGuardedExtAuthStepsAsideWhileItsServiceIsDown) {
  // The seed's "skip auth when the auth service is down": nothing listens on port 1.
  std::string config = ext_auth_config(1, false);
  const std::string anchor = "        failure_mode_allow: false\n";
  config.replace(config.find(anchor), anchor.size(),
                 anchor +
                     "        guard: { on_open: skip, breaker: { strategy: error_count, "
                     "threshold: 2, min_request_amount: 1, retry_timeout_ms: 60000 } }\n");
  SluiceProcess gw(config);
  httplib::Client c("127.0.0.1", gw.port());
  EXPECT_EQ(c.Get("/")->status, 503);
  EXPECT_EQ(c.Get("/")->status, 503);
  auto skipped = c.Get("/", {{"X-User", "mallory"}});
  ASSERT_TRUE(skipped);
  EXPECT_EQ(skipped->status, 200) << "the breaker is open: ext_auth steps aside";
  EXPECT_FALSE(json::parse(skipped->body)["headers"].contains("x-user"))
      << "stepping aside, ext_auth still removes the client's identity headers";
}

TEST(Identity, ExtAuthServiceDownIsAFailureNotAHang) {
  SluiceProcess closed(ext_auth_config(1, false));  // nothing listens on port 1
  httplib::Client c("127.0.0.1", closed.port());
  auto r = c.Get("/", {{"Authorization", "Bearer good"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  SluiceProcess open(ext_auth_config(1, true));
  httplib::Client c2("127.0.0.1", open.port());
  auto r2 = c2.Get("/", {{"Authorization", "Bearer good"}});
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
}

}  // namespace
}  // namespace sluice::testing
