// `guard:` and `rollout:` on middleware items, through the real binary: a limiter whose Redis is
// gone steps aside instead of answering 503 (the seed's "skip auth when the auth service is
// down"), and a rollout chosen by percentage or header, changed at run time and kept by reloads.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

TEST(Gate, AMiddlewareWhoseDependencyIsDownStepsAsideAndIsMarked) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw(R"(
workers: 1
access_log: { path: )" +
                   log + R"( }
routes:
  - name: api
    match: { prefix: / }
    middlewares:
      - type: rate_limit
        name: shared-quota
        backend: redis
        redis: { address: "127.0.0.1:1", on_failure: fail_closed, connect_timeout_ms: 50,
                 failure_threshold: 1 }
        limits: [ { name: all, key: route, rate: 1000, burst: 1000 } ]
        guard: { on_open: skip, breaker: { strategy: error_count, threshold: 3,
                 min_request_amount: 1, retry_timeout_ms: 60000 } }
    handler: { type: respond, status: 200, body: "served\n" }
)");
  httplib::Client c("127.0.0.1", gw.port());
  int refused = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = c.Get("/");
    ASSERT_TRUE(r);
    refused += r->status == 503;
  }
  EXPECT_EQ(refused, 3) << "fail_closed while the guard counts";
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "the limiter steps aside while its breaker is open";
    EXPECT_EQ(r->body, "served\n");
  }
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto m = admin.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(
      m->body.find(
          R"(sluice_middleware_skipped_total{middleware="shared-quota",reason="breaker_open",route="api"} 5)"),
      std::string::npos)
      << m->body;
  auto listed = nlohmann::json::parse(admin.Get("/rollouts")->body);
  EXPECT_EQ(listed["middlewares"][0]["guard"]["state"], "open") << listed.dump();
  gw.stop();
  const std::string lines = read_file(log);
  EXPECT_NE(lines.find(R"("skipped":"shared-quota:breaker_open")"), std::string::npos) << lines;
}

std::string config(int percent) {
  return R"(
workers: 1
routes:
  - name: api
    match: { prefix: / }
    middlewares:
      - type: headers
        name: canary
        response: { set: { X-Canary: "on" } }
        rollout: { percent: )" +
         std::to_string(percent) + R"(, by: "header:X-User", seed: 3,
                   match: { header: X-Force-Canary } }
    handler: { type: respond, status: 200, body: "ok" }
)";
}

// How many of 200 users get the canary.
int canary_users(httplib::Client& c) {
  int on = 0;
  for (int u = 0; u < 200; ++u) {
    auto r = c.Get("/", {{"X-User", "u" + std::to_string(u)}});
    if (r && r->get_header_value("X-Canary") == "on") ++on;
  }
  return on;
}

TEST(Gate, RolloutByPercentageAndHeaderChangedAtRunTimeAndKeptByAReload) {
  SluiceProcess gw(config(20));
  httplib::Client c("127.0.0.1", gw.port());
  const int first = canary_users(c);
  EXPECT_GT(first, 20);
  EXPECT_LT(first, 60);
  EXPECT_EQ(canary_users(c), first) << "the same users each time (stable per X-User)";
  auto forced = c.Get("/", {{"X-User", "nobody"}, {"X-Force-Canary", "1"}});
  EXPECT_EQ(forced->get_header_value("X-Canary"), "on");

  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto set = admin.Post("/rollouts/api/canary?percent=100");
  ASSERT_TRUE(set);
  ASSERT_EQ(set->status, 200) << set->body;
  EXPECT_EQ(canary_users(c), 200);
  EXPECT_EQ(admin.Post("/rollouts/api/canary?percent=150")->status, 400);
  EXPECT_EQ(admin.Post("/rollouts/api/nope?percent=1")->status, 404);

  gw.rewrite_config(config(20) + "\n# a comment changes nothing\n");
  ASSERT_EQ(admin.Post("/reload")->status, 200);
  EXPECT_EQ(canary_users(c), 200) << "the run-time percentage survives a reload";
  gw.rewrite_config(config(0));
  ASSERT_EQ(admin.Post("/reload")->status, 200);
  EXPECT_EQ(canary_users(c), 0) << "a changed item takes the file's percentage";
}

TEST(Gate, ConfigErrorsHavePositions) {
  TempDir dir;
  auto path = dir.write("bad.yaml", R"(
routes:
  - middlewares:
      - type: request_id
        rollout: { by: cookie }
      - type: headers
        guard: { breaker: { strategy: slow_request_ratio, threshold: 0.5 } }
    handler: { type: echo }
)");
  auto r = run_sluice("check -c " + path);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("bad.yaml:5:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("give a percent, a match, or both"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("use error_ratio or error_count"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sluice::testing
