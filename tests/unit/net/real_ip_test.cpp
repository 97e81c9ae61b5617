// The client address behind proxies (net/real_ip/): trusted proxies walked from the right
// as nginx's real_ip_recursive, a number of trusted hops as Envoy's xff_num_trusted_hops, config
// errors with their position, and the X-Forwarded-For the proxy sends on.
#include <gtest/gtest.h>

#include <vector>

#include "core/http_message.hpp"
#include "gateway/config.hpp"
#include "net/real_ip/real_ip.hpp"
#include "upstream/forwarding.hpp"

namespace sluice::net {
namespace {

std::string client(const RealIpPolicy& p, std::string_view peer,
                   std::vector<std::string_view> xff) {
  return p.client_address(peer, xff);
}

RealIpPolicy proxies(std::initializer_list<const char*> cidrs) {
  RealIpPolicy p;
  std::string error;
  for (const char* c : cidrs)
    EXPECT_TRUE(p.trusted_proxies.add(c, error)) << error;
  return p;
}

TEST(RealIp, TrustedProxiesWalkFromTheRightToTheFirstUntrustedAddress) {
  auto p = proxies({"10.0.0.0/8", "2001:db8::/32"});
  EXPECT_EQ(client(p, "10.0.0.1", {"203.0.113.9"}), "203.0.113.9");
  EXPECT_EQ(client(p, "10.0.0.1", {"198.51.100.1, 203.0.113.9, 10.0.0.2"}), "203.0.113.9")
      << "the spoofable leftmost entry is never reached past an untrusted one";
  EXPECT_EQ(client(p, "10.0.0.1", {"198.51.100.1, 203.0.113.9", "10.9.9.9"}), "203.0.113.9")
      << "several fields are one list, in order";
  EXPECT_EQ(client(p, "10.0.0.1", {"10.0.0.3, 10.0.0.2"}), "10.0.0.3")
      << "all trusted: the leftmost";
  EXPECT_EQ(client(p, "192.0.2.1", {"203.0.113.9"}), "192.0.2.1")
      << "an untrusted peer's header is ignored";
  EXPECT_EQ(client(p, "10.0.0.1", {}), "10.0.0.1");
  EXPECT_EQ(client(p, "10.0.0.1", {"garbage, 10.0.0.2"}), "10.0.0.2")
      << "a non-address stops the walk at the last trusted hop";
  EXPECT_EQ(client(p, "10.0.0.1", {"10.0.0.2, garbage"}), "10.0.0.1");
  EXPECT_EQ(client(p, "2001:db8::5", {"[2001:db8:ffff::1]:443, 2001:db8::7"}), "2001:db8:ffff::1");
}

TEST(RealIp, TrustedHopsCountEntriesFromTheRight) {
  RealIpPolicy one;
  one.trusted_hops = 1;
  EXPECT_EQ(client(one, "192.0.2.1", {"198.51.100.1, 203.0.113.9"}), "203.0.113.9");
  RealIpPolicy two;
  two.trusted_hops = 2;
  EXPECT_EQ(client(two, "192.0.2.1", {"198.51.100.1, 203.0.113.9"}), "198.51.100.1");
  EXPECT_EQ(client(two, "192.0.2.1", {"198.51.100.1", "203.0.113.9"}), "198.51.100.1");
  EXPECT_EQ(client(two, "192.0.2.1", {"203.0.113.9"}), "192.0.2.1")
      << "fewer entries than hops: the peer, as Envoy";
  EXPECT_EQ(client(one, "192.0.2.1", {"1.2.3.4, nonsense"}), "192.0.2.1");
  EXPECT_EQ(client(one, "192.0.2.1", {"203.0.113.9:5060"}), "203.0.113.9");
}

TEST(RealIp, EntriesAreNormalizedAddresses) {
  EXPECT_EQ(forwarded_entry_address(" 192.0.2.1 "), "192.0.2.1");
  EXPECT_EQ(forwarded_entry_address("192.0.2.1:80"), "192.0.2.1");
  EXPECT_EQ(forwarded_entry_address("[2001:DB8::1]:80"), "2001:db8::1");
  EXPECT_EQ(forwarded_entry_address("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(forwarded_entry_address("unknown"), "");
  EXPECT_EQ(forwarded_entry_address("_hidden"), "");
  EXPECT_EQ(forwarded_entry_address("[2001:db8::1"), "");
  EXPECT_EQ(forwarded_entry_address("fe80::1%eth0"), "");
  EXPECT_EQ(forwarded_entry_address("1.2.3.4\r\nX: y"), "");
}

std::vector<std::string> errors_of(const std::string& yaml) {
  GatewayServices services;
  return gateway::load_config_text(yaml, "t.yaml", nullptr, services).errors;
}

TEST(RealIp, ConfigIsReadAndErrorsCarryPositions) {
  GatewayServices services;
  auto ok = gateway::load_config_text(R"(real_ip: { trusted_proxies: ["10.0.0.0/8", "::1"] }
routes: [ { name: a, handler: { type: echo } } ]
)",
                                      "t.yaml", nullptr, services);
  ASSERT_TRUE(ok.ok()) << ok.errors[0];
  ASSERT_TRUE(ok.config->settings.real_ip);
  EXPECT_TRUE(ok.config->settings.real_ip->trusts("10.1.1.1"));
  EXPECT_FALSE(ok.config->settings.real_ip->trusts("192.0.2.1"));

  auto bad = errors_of(R"(routes: [ { name: a, handler: { type: echo } } ]
real_ip:
  trusted_proxies: ["10.0.0.0/33"]
  trusted_hops: 1
  hops: 2
)");
  ASSERT_EQ(bad.size(), 3u);
  EXPECT_EQ(bad[0],
            "t.yaml:3:20: real_ip.trusted_proxies: \"10.0.0.0/33\": prefix length must be 0..32");
  EXPECT_EQ(bad[1].rfind("t.yaml:4:17: real_ip.trusted_hops: use either", 0), 0u) << bad[1];
  EXPECT_EQ(bad[2].rfind("t.yaml:5:3: real_ip: unknown key \"hops\"", 0), 0u) << bad[2];
  auto range = errors_of(
      "real_ip: { trusted_hops: 40 }\nroutes: [ { name: a, handler: { type: echo } } ]\n");
  ASSERT_EQ(range.size(), 1u);
  EXPECT_EQ(range[0].rfind("t.yaml:1:26: real_ip.trusted_hops:", 0), 0u) << range[0];
}

// The proxy keeps the chain of a peer the real_ip policy trusts and appends the peer itself.
TEST(RealIp, ProxyAppendsThePeerAndKeepsATrustedChain) {
  auto policy = std::make_shared<RealIpPolicy>(proxies({"10.0.0.0/8"}));
  upstream::ForwardingPolicy forwarding;
  forwarding.real_ip = policy;
  auto forwarded_for = [&](std::string_view peer) {
    detail::RequestMessage msg;
    msg.method(boost::beast::http::verb::get);
    msg.target("/");
    msg.set(boost::beast::http::field::host, "h");
    msg.set("X-Forwarded-For", "203.0.113.9");
    Request request(msg);
    upstream::UpstreamRequest out;
    upstream::build_upstream_request(request, peer, forwarding, out);
    const auto at = out.fields.find("X-Forwarded-For: ");
    return out.fields.substr(at + 17, out.fields.find("\r\n", at) - at - 17);
  };
  EXPECT_EQ(forwarded_for("10.0.0.1"), "203.0.113.9, 10.0.0.1");
  EXPECT_EQ(forwarded_for("192.0.2.1"), "192.0.2.1") << "an untrusted peer's header is dropped";
}

// RFC 7239: the for= parameter of each element, quoted or not, with ports and brackets; an
// element without for=, "unknown" and obfuscated identifiers are not addresses.
TEST(RealIp, ForwardedHeaderForValues) {
  std::vector<std::string_view> fields = {
      R"(for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711")",
      "proto=https;host=a, for=unknown", R"(for="_hidden";host="a,b", for=10.0.0.5:80)"};
  const auto values = forwarded_for_values(fields);
  ASSERT_EQ(values.size(), 6u);
  EXPECT_EQ(values[0], "192.0.2.60");
  EXPECT_EQ(values[1], "[2001:db8:cafe::17]:4711");
  EXPECT_EQ(values[2], "");
  EXPECT_EQ(values[3], "unknown");
  EXPECT_EQ(values[4], "_hidden");
  EXPECT_EQ(values[5], "10.0.0.5:80");

  auto p = proxies({"10.0.0.0/8"});
  p.use_forwarded = true;
  EXPECT_EQ(client(p, "10.0.0.1", {"for=203.0.113.9, for=10.0.0.3"}), "203.0.113.9");
  EXPECT_EQ(client(p, "10.0.0.1", {R"(for="[2001:db8::1]:443";proto=https)"}), "2001:db8::1");
  EXPECT_EQ(client(p, "10.0.0.1", {"for=_gw, for=10.0.0.3"}), "10.0.0.3")
      << "an obfuscated identifier stops the walk at the last trusted address";
  EXPECT_EQ(client(p, "192.0.2.1", {"for=203.0.113.9"}), "192.0.2.1") << "untrusted peer";
  EXPECT_EQ(client(p, "10.0.0.1", {"proto=https"}), "10.0.0.1");
}

// forwarded: true appends this hop's element (IPv6 quoted and bracketed, the scheme the client
// used, the host), keeps a trusted chain and drops an untrusted one; X-Forwarded-Proto says
// https on a TLS connection. A client's X-Client-Cert-* never pass; the verified ones do when
// forward_client_cert is on.
TEST(RealIp, ProxyEmitsForwardedAndClientCertificateFields) {
  auto policy = std::make_shared<RealIpPolicy>(proxies({"10.0.0.0/8"}));
  upstream::ForwardingPolicy forwarding;
  forwarding.real_ip = policy;
  forwarding.forwarded = true;
  auto build = [&](const upstream::ClientConnection& client) {
    detail::RequestMessage msg;
    msg.method(boost::beast::http::verb::get);
    msg.target("/");
    msg.set(boost::beast::http::field::host, "example.com:8443");
    msg.set("Forwarded", "for=203.0.113.9");
    msg.set("X-Client-Cert-Subject", "CN=forged");
    Request request(msg);
    upstream::UpstreamRequest out;
    upstream::build_upstream_request(request, client, forwarding, out);
    return out.fields;
  };
  auto trusted = build({.peer_ip = "10.0.0.1", .tls = true});
  EXPECT_NE(trusted.find("Forwarded: for=203.0.113.9, for=10.0.0.1;proto=https;"
                         "host=\"example.com:8443\"\r\n"),
            std::string::npos)
      << trusted;
  EXPECT_NE(trusted.find("X-Forwarded-Proto: https\r\n"), std::string::npos) << trusted;
  EXPECT_NE(trusted.find("X-Client-Cert-Subject: CN=forged"), std::string::npos)
      << "a trusted proxy vouches for it";
  auto untrusted = build({.peer_ip = "2001:db8::7"});
  EXPECT_NE(untrusted.find("Forwarded: for=\"[2001:db8::7]\";proto=http;host="), std::string::npos)
      << untrusted;
  EXPECT_EQ(untrusted.find("203.0.113.9"), std::string::npos) << untrusted;
  EXPECT_EQ(untrusted.find("X-Client-Cert-Subject"), std::string::npos) << untrusted;

  forwarding.forward_client_cert = true;
  auto mtls = build({.peer_ip = "192.0.2.1",
                     .tls = true,
                     .cert_subject = "CN=client,O=Example",
                     .cert_san = "DNS:client.example"});
  EXPECT_NE(mtls.find("X-Client-Cert-Subject: CN=client,O=Example\r\n"), std::string::npos) << mtls;
  EXPECT_NE(mtls.find("X-Client-Cert-SAN: DNS:client.example\r\n"), std::string::npos) << mtls;
  EXPECT_EQ(mtls.find("CN=forged"), std::string::npos) << mtls;
}

}  // namespace
}  // namespace sluice::net
