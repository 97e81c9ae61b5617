// Forwarding — how the proxy rewrites a request for the upstream and the answer for the client:
// hop-by-hop headers (Connection and the headers it names, Keep-Alive, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-*) removed both ways; X-Forwarded-For/-Proto/-Host appended,
// trusting incoming values only from `trusted_proxies` or the gateway's `real_ip:` proxies; Via;
// Host rewriting; prefix stripping.
//
//   ForwardingPolicy p;  p.host_rewrite = "endpoint";
//   build_upstream_request(ex.request(), ex.context().peer_ip(), p, upstream_request);
//   serialize_head(upstream_request, upstream_host(p, endpoint, client_host), head);
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "core/http_message.hpp"
#include "net/cidr.hpp"
#include "net/real_ip/real_ip.hpp"
#include "sluice/body_stream.hpp"
#include "sluice/http.hpp"

namespace sluice::upstream {

struct Endpoint;

struct ForwardingPolicy {
  net::CidrSet trusted_proxies;  // whose X-Forwarded-* are kept and appended to
  // The gateway's `real_ip:`: a peer it trusts for the client address is trusted here too.
  std::shared_ptr<const net::RealIpPolicy> real_ip;
  std::string host_rewrite;  // empty: the client's Host; "endpoint": the endpoint's; else this
  std::string strip_prefix;  // removed from the start of the path
  // X-Client-Cert-Subject / X-Client-Cert-SAN: the client certificate a TLS listener verified
  // (mTLS), as Envoy's x-forwarded-client-cert. Off by default; a client's own values are always
  // dropped (kept only from a trusted proxy, which vouches for them).
  bool forward_client_cert = false;
  // RFC 7239 Forwarded: one element for this hop (for=peer;proto=http|https;host=...) appended
  // to the trusted chain; an untrusted peer's Forwarded is dropped. Off: Forwarded passes as is.
  bool forwarded = false;
};

// What the proxy knows of the client's connection (Context): its peer, TLS and client
// certificate.
struct ClientConnection {
  std::string_view peer_ip;
  bool tls = false;
  std::string_view cert_subject;
  std::string_view cert_san;
};

// The request as it goes upstream, kept serialized: header lines are written once per request,
// not stored in a field container (no per-field allocation on the hot path).
struct UpstreamRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string method_text;
  std::string target;
  std::string fields;    // "Name: value\r\n" lines, Host excluded (chosen per try)
  std::string body;      // a buffered body, sent with Content-Length
  bool chunked = false;  // a streamed body of unknown length, sent with chunked framing
};

// Fills `out` from the client's request; a buffered body is moved (forwarded with
// Content-Length); a streamed one (`stream`) is framed by its declared length, else chunked.
// `peer_ip` is the connection's peer (Context::peer_ip): appended to X-Forwarded-For, as nginx's
// $proxy_add_x_forwarded_for and Envoy do, so the chain names every hop.
void build_upstream_request(Request& in, const ClientConnection& client,
                            const ForwardingPolicy& policy, UpstreamRequest& out,
                            const BodyStream* stream = nullptr);
inline void build_upstream_request(Request& in, std::string_view peer_ip,
                                   const ForwardingPolicy& policy, UpstreamRequest& out,
                                   const BodyStream* stream = nullptr) {
  build_upstream_request(in, ClientConnection{.peer_ip = peer_ip}, policy, out, stream);
}
// The Host for a try to `endpoint` (host_rewrite: endpoint may differ between tries).
std::string_view upstream_host(const ForwardingPolicy& policy, const Endpoint& endpoint,
                               std::string_view client_host);
// Request line, Host and the header block, ready for a gather write with the body.
void serialize_head(const UpstreamRequest& request, std::string_view host, std::string& out);
// Removes the hop-by-hop fields, including those named by Connection.
void strip_hop_by_hop(boost::beast::http::fields& fields);
void strip_hop_by_hop(detail::Fields& fields);  // the messages' own (core/http_message.hpp)

// Whether the upstream connection stays open after an answer Beast's parser read, given its
// keep_alive(). That answers true for an HTTP/1.0 answer with `keep-alive` even when `close`
// is there too (in Connection or Proxy-Connection, which Beast reads alike); close wins
// (RFC 9112 §9.3), as in the fast reader (simple_answer fuzz finding 5).
bool keeps_alive(const boost::beast::http::fields& fields, unsigned version, bool beast_keep_alive);

// Hop-by-hop by its own name (Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade,
// Proxy-*); `text` is the name as sent, read only for unknown fields.
bool is_hop_by_hop(boost::beast::http::field name, std::string_view text);

inline constexpr std::string_view kVia = "1.1 sluice";  // what sluice adds to Via

// Appends `value` to a comma-separated list (Via), without the empty elements a bare or
// comma-ended value would make: `Via:` with nothing gave `Via: , 1.1 sluice` (a fuzz finding;
// recipients ignore empty elements, RFC 9110 §5.6.1, but a sender should not make them).
inline void append_list_value(std::string& list, std::string_view value) {
  constexpr std::string_view kTrim = " \t,";
  const auto first = value.find_first_not_of(kTrim);
  if (first == std::string_view::npos) return;
  value = value.substr(first, value.find_last_not_of(kTrim) - first + 1);
  list.append(list.empty() ? "" : ", ").append(value);
}
// The origin-form target for the upstream: absolute-form reduced, `strip_prefix` removed.
std::string upstream_target(std::string_view target, std::string_view strip_prefix);

}  // namespace sluice::upstream
