// The client's address through the real binary: X-Forwarded-For from trusted proxies or hops
// (`real_ip:`) reaching the echo handler, a per-IP rate limit, the access log and the proxy's
// X-Forwarded-For; PROXY protocol v1 and v2 headers on a `proxy_protocol: true` listener, and
// malformed or missing ones closing the connection unanswered.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/raw_client.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// The JSON body of the one answer in `stream`.
json echo_body(const std::string& stream) {
  const auto at = stream.find("\r\n\r\n");
  if (at == std::string::npos) return json();
  return json::parse(stream.substr(at + 4), nullptr, false);
}

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

const char* kProxyListener = R"(
listen: [ { address: "127.0.0.1:0", proxy_protocol: true } ]
limits: { header_timeout_ms: 300 }
routes:
  - name: echo
    handler: { type: echo }
)";

const std::string kGet = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";

std::string v2_ipv4(int command) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += static_cast<char>(0x20 | command);
  h += '\x11';
  h += std::string("\x00\x0c", 2);
  h += std::string("\xcb\x00\x71\x05\xc0\x00\x02\x01\x30\x39\x01\xbb", 12);  // 203.0.113.5:12345
  return h;
}

TEST(ClientAddress, ProxyProtocolV1AndV2NameTheClient) {
  SluiceProcess gw(kProxyListener);
  {
    RawClient client(gw.port());
    ASSERT_TRUE(client.send("PROXY TCP4 192.0.2.7 198.51.100.1 56318 443\r\n" + kGet));
    auto body = echo_body(client.read_responses(1));
    EXPECT_EQ(body["client_ip"], "192.0.2.7");
    EXPECT_EQ(body["peer_ip"], "192.0.2.7");
    ASSERT_TRUE(client.send(kGet)) << "the header comes once per connection";
    EXPECT_EQ(echo_body(client.read_responses(1))["client_ip"], "192.0.2.7");
  }
  {
    RawClient client(gw.port());
    ASSERT_TRUE(client.send("PROXY TCP6 2001:db8::7 2001:db8::1 56318 443\r\n"));
    std::this_thread::sleep_for(20ms);  // the header and the request in separate reads
    ASSERT_TRUE(client.send(kGet));
    EXPECT_EQ(echo_body(client.read_responses(1))["client_ip"], "2001:db8::7");
  }
  {
    RawClient client(gw.port());
    ASSERT_TRUE(client.send(v2_ipv4(1) + kGet));
    EXPECT_EQ(echo_body(client.read_responses(1))["client_ip"], "203.0.113.5");
  }
  for (const std::string& header : {v2_ipv4(0), std::string("PROXY UNKNOWN\r\n")}) {
    RawClient client(gw.port());  // LOCAL and UNKNOWN: the socket peer stays the client
    ASSERT_TRUE(client.send(header + kGet));
    EXPECT_EQ(echo_body(client.read_responses(1))["client_ip"], "127.0.0.1");
  }
}

TEST(ClientAddress, ProxyProtocolMalformedOrLateClosesUnanswered) {
  SluiceProcess gw(kProxyListener);
  for (const std::string& bad : {kGet, std::string("PROXY TCP4 192.0.2.7 198.51.100.1 1 99999\r\n"),
                                 std::string("PROXY TCP4 ") + std::string(200, '1'),
                                 std::string("\r\n\r\n\0\r\nQUIT\n\x11\x11\x00\x00", 16)}) {
    RawClient client(gw.port());
    ASSERT_TRUE(client.send(bad + kGet));
    EXPECT_EQ(client.read_responses(1, 2s), "") << "no HTTP answer before a valid header";
  }
  RawClient slow(gw.port());
  ASSERT_TRUE(slow.send("PROXY TCP4 192.0.2.7"));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(slow.closed_by_peer(3s)) << "header_timeout applies to the PROXY header";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  // The listener still serves.
  RawClient good(gw.port());
  ASSERT_TRUE(good.send("PROXY TCP4 192.0.2.8 198.51.100.1 1 2\r\n" + kGet));
  EXPECT_EQ(echo_body(good.read_responses(1))["client_ip"], "192.0.2.8");
  // Counted by reason on /metrics.
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sluice_proxy_protocol_errors_total{reason=\"invalid\"} 4"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("sluice_proxy_protocol_errors_total{reason=\"timeout\"} 1"),
            std::string::npos);
}

TEST(ClientAddress, ListenerConfigErrorsHavePositions) {
  TempDir dir;
  const auto path = dir.write("bad.yaml", R"(listen:
  - { address: "127.0.0.1:0", proxy_protocl: true }
  - { proxy_protocol: true }
routes: [ { name: a, handler: { type: echo } } ]
)");
  auto out = run_sluice("check -c " + path);
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.output.find("bad.yaml:2:31: listen[0]: unknown key \"proxy_protocl\" (did you mean "
                            "\"proxy_protocol\"?)"),
            std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find("bad.yaml:3:5: listen[1]: a listener needs an address"),
            std::string::npos)
      << out.output;
}

}  // namespace
}  // namespace sluice::testing
