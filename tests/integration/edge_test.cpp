// The public edge against hostile input, through the real binary: obs-fold (request smuggling),
// the header-count limit, and the admin API's secrets and token.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/raw_client.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

const char* kEcho = R"(
workers: 1
limits: { max_header_bytes: 65536 }
routes:
  - name: echo
    match: { prefix: / }
    handler: { type: echo }
)";

// A second request hidden in the first one's body, if the first is framed as chunked.
const std::string kHidden = "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

TEST(Edge, ObsFoldIsRefusedInEveryFieldAndNothingBehindItIsAnswered) {
  SluiceProcess gw(kEcho);
  const std::vector<std::string> folded = {
      // RFC 9112 §5.2: a request with obs-fold is refused (400), whatever the field.
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + kHidden,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n" + kHidden,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n ,chunked\r\n\r\n" + kHidden,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 5\r\n\r\nhello",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n 5\r\n\r\nhello",
      "GET / HTTP/1.1\r\nHost:\r\n x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n   \r\n\r\n",
      // §2.2: whitespace between the start line and the first field.
      "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
      "GET / HTTP/1.1\r\n\tHost: x\r\n\r\n",
  };
  for (const auto& bytes : folded) {
    RawClient c(gw.port());
    ASSERT_TRUE(c.send(bytes));
    const auto out = c.read_responses(2, std::chrono::seconds(2));
    EXPECT_EQ(status_codes(out), std::vector<int>{400}) << bytes << "\n---\n" << out;
    EXPECT_EQ(out.find("/smuggled"), std::string::npos) << bytes;
    EXPECT_TRUE(c.closed_by_peer()) << bytes;
  }
  // Whitespace inside a value, and a chunked body that carries a request's bytes as data, are
  // not folding: answered normally.
  RawClient ok(gw.port());
  ASSERT_TRUE(
      ok.send("POST / HTTP/1.1\r\nHost: x\r\nX-A: 1 \t 2\r\nTransfer-Encoding: chunked\r\n"
              "\r\n5\r\n\r\n GE\r\n0\r\n\r\n"));
  EXPECT_EQ(status_codes(ok.read_responses(1)), std::vector<int>{200});
}

std::string request_with_fields(int fields) {
  std::string r = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 1; i < fields; ++i)
    r += "X-F" + std::to_string(i) + ": v\r\n";
  return r + "\r\n";
}

TEST(Edge, HeaderFieldsBeyondMaxHeadersGet431) {
  SluiceProcess gw(kEcho);  // default limits.max_headers: 100
  for (auto [fields, status] :
       std::vector<std::pair<int, int>>{{100, 200}, {101, 431}, {2000, 431}}) {
    RawClient c(gw.port());
    ASSERT_TRUE(c.send(request_with_fields(fields)));
    EXPECT_EQ(status_codes(c.read_responses(1)), std::vector<int>{status}) << fields << " fields";
  }
  SluiceProcess small(
      "workers: 1\nlimits: { max_headers: 5 }\nroutes: [ { handler: { type: echo } } ]\n");
  RawClient five(small.port());
  ASSERT_TRUE(five.send(request_with_fields(5)));
  EXPECT_EQ(status_codes(five.read_responses(1)), std::vector<int>{200});
  RawClient six(small.port());
  ASSERT_TRUE(six.send(request_with_fields(6)));
  const auto out = six.read_responses(1);
  EXPECT_EQ(status_codes(out), std::vector<int>{431});
  EXPECT_NE(out.find("too_many_headers"), std::string::npos) << out;
}

TEST(Edge, ConfigNeverShowsASecretAndEveryAdminEndpointNeedsTheToken) {
  ::setenv("SLUICE_EDGE_TEST_REDIS_PASSWORD", "env-redis-secret", 1);
  SluiceProcess gw(R"(
workers: 1
admin: { listen: 127.0.0.1:0, token: admin-tok-123, open_paths: [/healthz] }
tracing:
  endpoint: http://127.0.0.1:1
  headers: { Authorization: "Bearer otlp-secret-456", X-Team: blue }
routes:
  - name: limited
    match: { prefix: /a }
    middlewares:
      - type: rate_limit
        backend: redis
        redis: { address: "127.0.0.1:1", password: redis-pass-789, on_failure: fail_open }
        limits: [ { name: all, key: route, rate: 10, burst: 10 } ]
    handler: { type: echo }
  - name: limited-env
    match: { prefix: /b }
    middlewares:
      - type: rate_limit
        backend: redis
        redis: { address: "127.0.0.1:1", password_env: SLUICE_EDGE_TEST_REDIS_PASSWORD }
        limits: [ { name: all, key: route, rate: 10, burst: 10 } ]
    handler: { type: echo }
)");
  httplib::Client admin("127.0.0.1", gw.admin_port());
  for (const char* path : {"/config", "/routes", "/metrics", "/readyz", "/nope"}) {
    auto r = admin.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 401) << path << " is read without the token";
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer") << path;
  }
  auto wrong = admin.Get("/config", {{"Authorization", "Bearer admin-tok-12"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto health = admin.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << "listed in admin.open_paths";

  const httplib::Headers auth = {{"Authorization", "Bearer admin-tok-123"}};
  auto config = admin.Get("/config", auth);
  ASSERT_TRUE(config);
  ASSERT_EQ(config->status, 200);
  for (const char* secret : {"admin-tok-123", "otlp-secret-456", "redis-pass-789",
                             "SLUICE_EDGE_TEST_REDIS_PASSWORD", "env-redis-secret"}) {
    EXPECT_EQ(config->body.find(secret), std::string::npos) << secret << " in\n" << config->body;
  }
  auto body = nlohmann::json::parse(config->body)["config"];
  EXPECT_EQ(body["admin"]["token"], "<redacted>");
  EXPECT_EQ(body["tracing"]["headers"]["Authorization"], "<redacted>");
  EXPECT_EQ(body["tracing"]["headers"]["X-Team"], "blue") << "only secrets are hidden";
  EXPECT_EQ(body["routes"][0]["middlewares"][0]["redis"]["password"], "<redacted>");
  EXPECT_EQ(body["routes"][1]["middlewares"][0]["redis"]["password_env"], "<redacted>");
  EXPECT_EQ(body["routes"][0]["middlewares"][0]["redis"]["address"], "127.0.0.1:1");
  for (const char* path : {"/routes", "/metrics", "/readyz"}) {
    auto r = admin.Get(path, auth);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
  }
}

TEST(Edge, OnlyProbesMayBeOpenedWithoutTheToken) {
  TempDir dir;
  auto path = dir.write("open.yaml",
                        "admin: { listen: 127.0.0.1:0, token: t, open_paths: [/config] }\n"
                        "routes: [ { handler: { type: echo } } ]\n");
  auto r = run_sluice("check -c " + path);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("open_paths"), std::string::npos) << r.output;
}

// A reload cannot stop or move a running admin listener (a restart is reported as needed), and
// the config it loaded has no token: the running listener keeps the token it was started with,
// instead of serving everything without one.
TEST(Edge, AReloadThatDisablesTheAdminLeavesNoOpenAdminBehind) {
  const std::string routes =
      "routes: [ { name: r, match: { prefix: / }, handler: { type: echo } } ]\n";
  SluiceProcess gw("workers: 1\nadmin: { listen: 127.0.0.1:0, token: tok-1 }\n" + routes);
  httplib::Client admin("127.0.0.1", gw.admin_port());
  const httplib::Headers token{{"Authorization", "Bearer tok-1"}};
  auto before = admin.Get("/config");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 401);
  gw.rewrite_config("workers: 1\nadmin: { enabled: false }\n" + routes);
  ::kill(gw.pid(), SIGHUP);
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto r = admin.Get("/config");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 401) << "the admin answered without its token after the reload";
    auto with = admin.Get("/config", token);
    ASSERT_TRUE(with);
    reloaded = with->status == 200 && with->body.find("\"enabled\": false") != std::string::npos;
  }
  EXPECT_TRUE(reloaded) << "the reload was applied (the shown config has enabled: false)\n"
                        << gw.log();
  EXPECT_NE(gw.log().find("take effect only after a restart"), std::string::npos) << gw.log();
  httplib::Client client("127.0.0.1", gw.port());
  auto served = client.Get("/x");
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200) << "the public listener keeps serving";
}

}  // namespace
}  // namespace sluice::testing
