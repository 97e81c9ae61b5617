// The client's address through the real binary: X-Forwarded-For from trusted proxies or hops
// (`real_ip:`) reaching the echo handler, a per-IP rate limit, the access log and the proxy's
// X-Forwarded-For.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ClientAddress, TrustedProxiesNameTheClientForEchoLimitsAndLogs) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw(
      "real_ip: { trusted_proxies: [\"127.0.0.0/8\", \"10.0.0.0/8\"] }\n"
      "access_log: { path: " +
      log + " }\n" + R"(
routes:
  - name: limited
    match: { prefix: /limited }
    middlewares:
      - type: rate_limit
        limits: [ { name: per_ip, key: client_ip, rate: 0.001, burst: 1 } ]
    handler: { type: respond, status: 200, body: "ok\n" }
  - name: echo
    match: { prefix: / }
    handler: { type: echo }
)");
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Get("/", {{"X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.0.0.2"}});
  ASSERT_TRUE(r);
  auto body = json::parse(r->body);
  EXPECT_EQ(body["client_ip"], "203.0.113.9");
  EXPECT_EQ(body["peer_ip"], "127.0.0.1");
  r = c.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["client_ip"], "127.0.0.1") << "no header: the peer";

  // One bucket per client address, not one for the balancer in front.
  auto limited = [&](const char* ip) {
    auto a = c.Get("/limited", {{"X-Forwarded-For", ip}});
    return a ? a->status : -1;
  };
  EXPECT_EQ(limited("192.0.2.1"), 200);
  EXPECT_EQ(limited("192.0.2.2"), 200);
  EXPECT_EQ(limited("192.0.2.1"), 429);

  bool logged = false;
  for (int i = 0; i < 500 && !logged; ++i) {
    logged = file_text(log).find("\"client_ip\":\"203.0.113.9\"") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(logged) << file_text(log);
}

TEST(ClientAddress, TrustedHopsAndTheForwardedChainUpstream) {
  SluiceProcess upstream(R"(routes: [ { name: echo, handler: { type: echo } } ])");
  SluiceProcess gw("real_ip: { trusted_hops: 1 }\nupstreams:\n  up: { endpoints: [\"127.0.0.1:" +
                   std::to_string(upstream.port()) + "\"] }\n" + R"(
routes:
  - name: proxied
    match: { prefix: /p }
    handler: { type: proxy, cluster: up }
  - name: echo
    match: { prefix: / }
    handler: { type: echo }
)");
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Get("/", {{"X-Forwarded-For", "198.51.100.1, 203.0.113.9"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["client_ip"], "203.0.113.9");
  // The chain goes on with the peer appended: the next hop can count its own trusted hops.
  r = c.Get("/p", {{"X-Forwarded-For", "198.51.100.1, 203.0.113.9"}});
  ASSERT_TRUE(r);
  auto up = json::parse(r->body);
  EXPECT_EQ(up["headers"]["x-forwarded-for"][0], "198.51.100.1, 203.0.113.9, 127.0.0.1");
}

}  // namespace
}  // namespace sluice::testing
