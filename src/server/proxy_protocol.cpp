#include "server/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>
#include <string>

namespace sluice::server {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::size_t kV1MaxLine = 107;  // the spec's limit, CRLF included
constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r',
                                   '\n', 'Q',  'U',  'I',  'T',  '\n'};
constexpr std::string_view kV2Sig(kV2Signature, sizeof kV2Signature);

ProxyHeader invalid(const char* why) {
  ProxyHeader h;
  h.status = ProxyHeaderStatus::invalid;
  h.error = why;
  return h;
}

// True when `bytes` could still become `prefix` (it is a prefix of it, or starts with it).
bool could_be(std::string_view bytes, std::string_view prefix) {
  const auto n = std::min(bytes.size(), prefix.size());
  return bytes.substr(0, n) == prefix.substr(0, n);
}

// A decimal port: 1 to 5 digits, no sign, no leading zero (except "0"), at most 65535.
std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// inet_pton is strict (no leading zeros in IPv4 octets, no zone ids), as the spec wants.
std::optional<boost::asio::ip::address> parse_address(std::string_view s, bool v6) {
  if (s.empty() || s.size() > 45) return std::nullopt;
  char text[46];
  std::memcpy(text, s.data(), s.size());
  text[s.size()] = '\0';
  if (v6) {
    std::array<unsigned char, 16> bytes;
    if (::inet_pton(AF_INET6, text, bytes.data()) != 1) return std::nullopt;
    return boost::asio::ip::address_v6(bytes);
  }
  std::array<unsigned char, 4> bytes;
  if (::inet_pton(AF_INET, text, bytes.data()) != 1) return std::nullopt;
  return boost::asio::ip::address_v4(bytes);
}

// "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n" or "PROXY UNKNOWN[ anything]\r\n".
ProxyHeader parse_v1(std::string_view bytes) {
  // The line ends at its first LF, which must follow a CR. (Looking for the first CRLF instead
  // let "PROXY UNKNOWN a\nb\r\n" be refused or taken depending on where a read stopped: the
  // proxy_protocol fuzz target's first finding.)
  const auto lf = bytes.substr(0, kV1MaxLine).find('\n');
  if (lf == std::string_view::npos) {
    if (bytes.size() >= kV1MaxLine) return invalid("v1 line longer than 107 bytes");
    return {};
  }
  if (bytes[lf - 1] != '\r') return invalid("v1 line not ended by CRLF");
  const auto end = lf - 1;
  std::string_view line = bytes.substr(kV1Prefix.size(), end - kV1Prefix.size());
  ProxyHeader h;
  h.status = ProxyHeaderStatus::done;
  h.used = end + 2;
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) return h;  // the rest is ignored
  std::string_view fields[5];
  for (int i = 0; i < 5; ++i) {
    const auto space = line.find(' ');
    if ((space == std::string_view::npos) != (i == 4)) return invalid("v1 needs exactly 5 fields");
    fields[i] = line.substr(0, space);
    line = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
  }
  if (fields[0] != "TCP4" && fields[0] != "TCP6")
    return invalid("v1 protocol not TCP4/TCP6/UNKNOWN");
  const bool v6 = fields[0] == "TCP6";
  auto source = parse_address(fields[1], v6);
  auto destination = parse_address(fields[2], v6);
  auto source_port = parse_port(fields[3]);
  auto destination_port = parse_port(fields[4]);
  if (!source || !destination) return invalid("v1 address invalid for its family");
  if (!source_port || !destination_port) return invalid("v1 port invalid");
  h.source = source;
  h.source_port = *source_port;
  return h;
}

std::uint16_t be16(const unsigned char* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// 12-byte signature, version/command, family/transport, 16-bit length, addresses, TLVs.
ProxyHeader parse_v2(std::string_view bytes) {
  if (bytes.size() < 16) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const unsigned version = p[12] >> 4, command = p[12] & 0x0f;
  const unsigned family = p[13] >> 4, transport = p[13] & 0x0f;
  const std::size_t length = be16(p + 14);
  if (version != 2) return invalid("v2 version is not 2");
  if (command > 1) return invalid("v2 command is neither LOCAL nor PROXY");
  if (family > 3 || transport > 2) return invalid("v2 unknown family or transport");
  if (length > kMaxProxyV2Payload) return invalid("v2 header longer than the limit");
  if (bytes.size() < 16 + length) return {};
  ProxyHeader h;
  h.status = ProxyHeaderStatus::done;
  h.used = 16 + length;
  static constexpr std::size_t kAddressBytes[] = {0, 12, 36, 216};
  const std::size_t address_bytes = kAddressBytes[family];
  if (length < address_bytes) return invalid("v2 length shorter than its addresses");
  // TLVs (type, 16-bit length, value) fill the rest exactly; their contents are not used.
  for (std::size_t at = 16 + address_bytes; at < h.used;) {
    if (h.used - at < 3) return invalid("v2 truncated TLV");
    const std::size_t tlv_length = be16(p + at + 1);
    if (h.used - at - 3 < tlv_length) return invalid("v2 TLV longer than the header");
    at += 3 + tlv_length;
  }
  if (command == 0) return h;  // LOCAL: the balancer's own connection; addresses ignored
  if (family == 1 || family == 2) {
    if (transport != 1) return invalid("v2 PROXY over IP must be a stream (TCP)");
    if (family == 1) {
      std::array<unsigned char, 4> a;
      std::memcpy(a.data(), p + 16, 4);
      h.source = boost::asio::ip::address_v4(a);
      h.source_port = be16(p + 24);
    } else {
      std::array<unsigned char, 16> a;
      std::memcpy(a.data(), p + 16, 16);
      h.source = boost::asio::ip::address_v6(a);
      h.source_port = be16(p + 48);
    }
  }
  return h;  // UNSPEC or AF_UNIX: no IP address to take, the socket peer stays
}

}  // namespace

ProxyHeader parse_proxy_header(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (could_be(bytes, kV2Sig))
    return bytes.size() < kV2Sig.size() ? ProxyHeader{} : parse_v2(bytes);
  if (could_be(bytes, kV1Prefix))
    return bytes.size() < kV1Prefix.size() ? ProxyHeader{} : parse_v1(bytes);
  return invalid("no PROXY protocol signature");
}

}  // namespace sluice::server
