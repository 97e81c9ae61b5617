// PROXY protocol v1 (text) and v2 (binary) header parser: what an L4 load balancer (HAProxy,
// AWS NLB, ...) sends before the client's bytes to tell who the client is. Strict: anything
// that is not exactly a header of the spec (haproxy.org/download/2.9/doc/proxy-protocol.txt)
// is refused, and the connection is then closed.
//
//   auto r = parse_proxy_header(bytes);  // bytes read so far on a new connection
//   if (r.status == ProxyHeaderStatus::need_more) read_more();
//   else if (r.status == ProxyHeaderStatus::done) { consume(r.used); if (r.source) peer =
//   *r.source; }
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::server {

enum class ProxyHeaderStatus {
  need_more,  // a valid beginning of a header: read more bytes and parse again from the start
  done,       // a whole header of `used` bytes; what follows is the client's stream
  invalid,    // not a PROXY header (or a broken one): close the connection, answer nothing
};

struct ProxyHeader {
  ProxyHeaderStatus status = ProxyHeaderStatus::need_more;
  std::size_t used = 0;  // the header's length when done
  // The client's address and port; empty for LOCAL (a health check by the balancer itself),
  // UNKNOWN / UNSPEC / AF_UNIX: the socket peer stays the client.
  std::optional<boost::asio::ip::address> source;
  std::uint16_t source_port = 0;
  const char* error = "";  // why it is invalid, for the debug log
};

// The longest header accepted: v1's 107 bytes, v2's 16 plus this many address and TLV bytes.
inline constexpr std::size_t kMaxProxyV2Payload = 2048;

ProxyHeader parse_proxy_header(std::string_view bytes);

}  // namespace sluice::server
