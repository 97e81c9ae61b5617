// Forwarding — how the proxy rewrites a request for the upstream and the answer for the client:
// hop-by-hop headers (Connection and the headers it names, Keep-Alive, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-*) removed both ways; X-Forwarded-For/-Proto/-Host appended,
// trusting incoming values only from `trusted_proxies`; Via; Host rewriting; prefix stripping.
//
//   ForwardingPolicy p;  p.host_rewrite = "endpoint";
//   build_upstream_request(ex.request(), ex.context().client_ip(), p, upstream_request);
//   set_upstream_host(upstream_request, p, endpoint, client_host);
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>

#include "gateway/proxy/cidr.hpp"
#include "sluice/http.hpp"

namespace sluice::gateway::proxy {

struct Endpoint;

struct ForwardingPolicy {
  CidrSet trusted_proxies;   // whose X-Forwarded-* are kept and appended to
  std::string host_rewrite;  // empty: the client's Host; "endpoint": the endpoint's; else this
  std::string strip_prefix;  // removed from the start of the path
};

using UpstreamRequest = boost::beast::http::request<boost::beast::http::string_body>;
using UpstreamResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Fills `out` from the client's request; the body is moved (forwarded with Content-Length).
void build_upstream_request(Request& in, std::string_view client_ip, const ForwardingPolicy& policy,
                            UpstreamRequest& out);
// Sets Host for the chosen endpoint (may differ between tries with host_rewrite: endpoint).
void set_upstream_host(UpstreamRequest& out, const ForwardingPolicy& policy,
                       const Endpoint& endpoint, std::string_view client_host);
// The request line and header block of `request` as sent on the wire (the body goes after it
// in the same gather write): cheaper than Beast's generic serializer on the hot path.
void serialize_head(const UpstreamRequest& request, std::string& out);
// Removes the hop-by-hop fields, including those named by Connection.
void strip_hop_by_hop(boost::beast::http::fields& fields);
// The origin-form target for the upstream: absolute-form reduced, `strip_prefix` removed.
std::string upstream_target(std::string_view target, std::string_view strip_prefix);

}  // namespace sluice::gateway::proxy
