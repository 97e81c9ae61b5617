// The PROXY protocol header parser (server/proxy_protocol.hpp): v1 TCP4/TCP6/UNKNOWN, v2
// IPv4/IPv6/LOCAL with TLVs, every prefix of a valid header asking for more, and truncated,
// oversized or garbage headers refused.
#include "server/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sluice::server {
namespace {

using S = ProxyHeaderStatus;

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& payload) {
  std::string h = kSig;
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(fam);
  h += static_cast<char>(payload.size() >> 8);
  h += static_cast<char>(payload.size() & 0xff);
  return h + payload;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b)
    s += static_cast<char>(x);
  return s;
}

const std::string kV4Addresses = bytes({192, 0, 2, 7, 198, 51, 100, 1, 0xdb, 0xfe, 0x01, 0xbb});

// Every strict prefix of a valid header needs more; the whole parses the same with HTTP after.
void expect_prefixes_need_more(const std::string& header) {
  for (std::size_t n = 0; n < header.size(); ++n)
    EXPECT_EQ(parse_proxy_header(header.substr(0, n)).status, S::need_more) << n;
  auto whole = parse_proxy_header(header + "GET / HTTP/1.1\r\n");
  EXPECT_EQ(whole.status, S::done);
  EXPECT_EQ(whole.used, header.size());
}

TEST(ProxyProtocol, V1Tcp4AndTcp6) {
  const std::string h4 = "PROXY TCP4 192.0.2.7 198.51.100.1 56318 443\r\n";
  auto r = parse_proxy_header(h4);
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_EQ(r.used, h4.size());
  EXPECT_EQ(r.source->to_string(), "192.0.2.7");
  EXPECT_EQ(r.source_port, 56318);
  expect_prefixes_need_more(h4);

  const std::string h6 = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
  r = parse_proxy_header(h6);
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_EQ(r.source->to_string(), "2001:db8::7");
  EXPECT_EQ(r.source_port, 65535);
  expect_prefixes_need_more(h6);
}

TEST(ProxyProtocol, V1UnknownKeepsThePeer) {
  for (std::string h : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    auto r = parse_proxy_header(h);
    ASSERT_EQ(r.status, S::done) << h;
    EXPECT_EQ(r.used, h.size());
    EXPECT_FALSE(r.source);
  }
}

TEST(ProxyProtocol, V1MalformedIsRefused) {
  for (std::string h : {
           "PROXY TCP4 192.0.2.7 198.51.100.1 56318\r\n",        // a field short
           "PROXY TCP4 192.0.2.7 198.51.100.1 56318 443 1\r\n",  // a field long
           "PROXY TCP4  192.0.2.7 198.51.100.1 56318 443\r\n",   // double space
           "PROXY TCP4 2001:db8::7 198.51.100.1 56318 443\r\n",  // family mismatch
           "PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",           // family mismatch
           "PROXY TCP4 192.0.2.07 198.51.100.1 56318 443\r\n",   // leading zero in an octet
           "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",    // port range
           "PROXY TCP4 192.0.2.7 198.51.100.1 0443 443\r\n",     // leading zero
           "PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",       // sign
           "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",          // protocol
           "PROXY TCP4 192.0.2.7 198.51.100.1 56318 443\n",      // LF alone
           "proxy TCP4 192.0.2.7 198.51.100.1 56318 443\r\n",    // case
           "GET / HTTP/1.1\r\nHost: x\r\n\r\n",                  // no header at all
           "PROXY\r\n",
       }) {
    auto r = parse_proxy_header(h);
    EXPECT_EQ(r.status, S::invalid) << h;
  }
  // No CRLF within the spec's 107 bytes.
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN " + std::string(93, 'x')).status, S::invalid);
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN " + std::string(92, 'x')).status, S::need_more);
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN " + std::string(91, 'x') + "\r\n").status, S::done);
}

// A lone LF inside the line ends it (refused), however the bytes arrive: before the fix, all
// at once the first CRLF was found and UNKNOWN ignored the rest, while a read that stopped
// after the LF saw no CRLF and was refused. (The proxy_protocol fuzz target's first finding.)
TEST(ProxyProtocol, V1LoneLfBeforeTheCrlfIsRefusedWhereverTheReadStops) {
  const std::string h = "PROXY UNKNOWN whaterXY\nUN\r\n";
  EXPECT_EQ(parse_proxy_header(h).status, S::invalid);
  EXPECT_EQ(parse_proxy_header(h.substr(0, h.find('\n') + 1)).status, S::invalid);
  EXPECT_EQ(parse_proxy_header(h.substr(0, h.find('\n'))).status, S::need_more);
}

TEST(ProxyProtocol, V2Ipv4AndIpv6) {
  auto h4 = v2(0x21, 0x11, kV4Addresses);
  auto r = parse_proxy_header(h4);
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_EQ(r.used, h4.size());
  EXPECT_EQ(r.source->to_string(), "192.0.2.7");
  EXPECT_EQ(r.source_port, 0xdbfe);
  expect_prefixes_need_more(h4);

  std::string a6 = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}) +
                   bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}) +
                   bytes({0x30, 0x39, 0x01, 0xbb});
  auto h6 = v2(0x21, 0x21, a6);
  r = parse_proxy_header(h6);
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_EQ(r.source->to_string(), "2001:db8::7");
  EXPECT_EQ(r.source_port, 12345);
  expect_prefixes_need_more(h6);
}

TEST(ProxyProtocol, V2TlvsAreSkipped) {
  // ALPN "h2", an AWS VPC endpoint id (0xEA), and a NOOP of length 0.
  auto tlvs = bytes({0x01, 0x00, 0x02}) + "h2" + bytes({0xEA, 0x00, 0x05}) + "\x01vpce" +
              bytes({0x04, 0x00, 0x00});
  auto h = v2(0x21, 0x11, kV4Addresses + tlvs);
  auto r = parse_proxy_header(h + "GET");
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_EQ(r.used, h.size());
  EXPECT_EQ(r.source->to_string(), "192.0.2.7");
}

TEST(ProxyProtocol, V2LocalAndUnspecKeepThePeer) {
  auto local = v2(0x20, 0x00, "");
  auto r = parse_proxy_header(local);
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_EQ(r.used, 16u);
  EXPECT_FALSE(r.source);
  r = parse_proxy_header(v2(0x20, 0x11, kV4Addresses));  // LOCAL with addresses: ignored
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_FALSE(r.source);
  r = parse_proxy_header(v2(0x21, 0x00, ""));  // PROXY over UNSPEC
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_FALSE(r.source);
  r = parse_proxy_header(v2(0x21, 0x31, std::string(216, '\0')));  // AF_UNIX
  ASSERT_EQ(r.status, S::done) << r.error;
  EXPECT_FALSE(r.source);
}

TEST(ProxyProtocol, V2MalformedIsRefused) {
  EXPECT_EQ(parse_proxy_header(v2(0x11, 0x11, kV4Addresses)).status, S::invalid) << "version 1";
  EXPECT_EQ(parse_proxy_header(v2(0x22, 0x11, kV4Addresses)).status, S::invalid) << "command";
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x41, kV4Addresses)).status, S::invalid) << "family";
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x13, kV4Addresses)).status, S::invalid) << "transport";
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x12, kV4Addresses)).status, S::invalid) << "UDP";
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x11, kV4Addresses.substr(0, 11))).status, S::invalid)
      << "length shorter than the addresses";
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x21, kV4Addresses)).status, S::invalid)
      << "IPv6 with IPv4's 12 bytes";
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x11, kV4Addresses + bytes({0x01, 0x00}))).status,
            S::invalid)
      << "truncated TLV";
  EXPECT_EQ(
      parse_proxy_header(v2(0x21, 0x11, kV4Addresses + bytes({0x01, 0x00, 0x05}) + "ab")).status,
      S::invalid)
      << "TLV longer than the header";
  auto oversized =
      v2(0x21, 0x11, kV4Addresses + bytes({0x04, 0x08, 0x00}) + std::string(2048, 'x'));
  EXPECT_EQ(parse_proxy_header(oversized.substr(0, 16)).status, S::invalid)
      << "refused from its length field, before the bytes arrive";
  std::string broken_sig = kSig;
  broken_sig[11] = 'X';
  EXPECT_EQ(parse_proxy_header(broken_sig).status, S::invalid);
  EXPECT_EQ(parse_proxy_header(std::string("\r\n\r\nGET")).status, S::invalid);
}

}  // namespace
}  // namespace sluice::server
