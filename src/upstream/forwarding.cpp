#include "upstream/forwarding.hpp"

#include <boost/beast/core/string.hpp>
#include <cstring>
#include <vector>

#include "core/http_message.hpp"
#include "core/http_text.hpp"
#include "upstream/endpoint.hpp"

namespace sluice::upstream {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {
std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

// Beast's iequals is a call even when the lengths differ: every field without a Beast code
// (X-Request-Id, traceparent, ...) was compared with five names per request that way.
bool same_name(std::string_view text, std::string_view name) {
  return text.size() == name.size() && beast::iequals(text, name);
}

}  // namespace

// Known fields compare by enum; only unknown names need a string compare ("Proxy-Foo").
bool is_hop_by_hop(http::field name, std::string_view text) {
  switch (name) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::proxy_authenticate:
    case http::field::proxy_authentication_info:
    case http::field::proxy_authorization:
    case http::field::proxy_connection:
    case http::field::proxy_features:
    case http::field::proxy_instruction:
      return true;
    case http::field::unknown:
      return text.size() >= 6 && (text[0] == 'p' || text[0] == 'P') &&
             beast::iequals(text.substr(0, 6), "proxy-");
    default:
      return false;
  }
}

namespace {

// The comma-separated tokens of every Connection field: the headers it names are hop-by-hop.
template <class Fields>
std::vector<std::string> connection_tokens(const Fields& fields) {
  std::vector<std::string> tokens;
  for (const auto& f : fields) {  // a linear pass comparing the enum beats the keyed lookup
    if (f.name() != http::field::connection) continue;
    detail::for_each_list_item(sv(f.value()), [&](std::string_view token) {
      tokens.emplace_back(token);
      return true;
    });
  }
  return tokens;
}

bool named_by(const std::vector<std::string>& tokens, std::string_view name) {
  for (const auto& t : tokens)
    if (beast::iequals(t, name)) return true;
  return false;
}

// One resize and four copies: chained append()s each re-check capacity and measure literals.
void append_line(std::string& out, std::string_view name, std::string_view value) {
  const std::size_t at = out.size();
  out.resize(at + name.size() + value.size() + 4);
  char* p = out.data() + at;
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  std::memcpy(p, ": ", 2);
  std::memcpy(p + 2, value.data(), value.size());
  std::memcpy(p + 2 + value.size(), "\r\n", 2);
}
}  // namespace

namespace {
template <class Fields>
void strip_hop_by_hop_fields(Fields& fields) {
  const auto tokens = connection_tokens(fields);
  for (auto it = fields.begin(); it != fields.end();) {
    const auto text = sv(it->name_string());
    if (is_hop_by_hop(it->name(), text) || (!tokens.empty() && named_by(tokens, text))) {
      it = fields.erase(it);
    } else {
      ++it;
    }
  }
}
}  // namespace

void strip_hop_by_hop(http::fields& fields) {
  strip_hop_by_hop_fields(fields);
}
void strip_hop_by_hop(detail::Fields& fields) {
  strip_hop_by_hop_fields(fields);
}

std::string upstream_target(std::string_view target, std::string_view strip_prefix) {
  if (target.starts_with("http://") || target.starts_with("https://")) {
    const auto authority = target.find("//") + 2;
    const auto slash = target.find_first_of("/?", authority);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (!strip_prefix.empty() && target.starts_with(strip_prefix)) {
    target.remove_prefix(strip_prefix.size());
    if (target.empty() || target.front() != '/') return "/" + std::string(target);
  }
  return std::string(target);
}

void build_upstream_request(Request& in, const ClientConnection& client,
                            const ForwardingPolicy& policy, UpstreamRequest& out,
                            const BodyStream* stream) {
  const std::string_view peer_ip = client.peer_ip;
  auto& msg = in.native();
  out.method = msg.method();
  out.method_text = sv(msg.method_string());
  out.target = upstream_target(sv(msg.target()), policy.strip_prefix);
  out.fields.clear();

  const bool trusted = policy.trusted_proxies.contains(peer_ip) ||
                       (policy.real_ip != nullptr && policy.real_ip->trusts(peer_ip));
  const detail::Fields& f = msg.base();
  const auto tokens = connection_tokens(f);
  std::string forwarded_for;
  std::string_view forwarded_proto;
  std::string_view forwarded_host;
  std::string via;
  std::string forwarded;  // RFC 7239, the trusted incoming chain (policy.forwarded)
  std::string_view host;
  // Each field in wire order: Beast's, then the ones the chain added (core/extra_fields.hpp).
  const auto pass = [&](http::field name, std::string_view text, std::string_view value) {
    if (is_hop_by_hop(name, text) || (!tokens.empty() && named_by(tokens, text))) return;
    switch (name) {
      case http::field::host:
        if (host.empty()) host = value;
        return;
      case http::field::content_length:
      case http::field::expect:  // 100-continue was answered by sluice itself
        return;
      case http::field::via:
        append_list_value(via, value);
        return;
      case http::field::forwarded:
        if (!policy.forwarded) break;  // passed as is
        if (trusted) forwarded.append(forwarded.empty() ? "" : ", ").append(value);
        return;
      case http::field::unknown:
        if (same_name(text, "x-forwarded-for")) {
          if (trusted) forwarded_for.append(forwarded_for.empty() ? "" : ", ").append(value);
          return;
        }
        if (same_name(text, "x-forwarded-proto")) {
          if (trusted && forwarded_proto.empty()) forwarded_proto = value;
          return;
        }
        if (same_name(text, "x-forwarded-host")) {
          if (trusted && forwarded_host.empty()) forwarded_host = value;
          return;
        }
        if (same_name(text, "x-client-cert-subject") || same_name(text, "x-client-cert-san")) {
          if (!trusted) return;  // a client cannot name its own certificate
          break;
        }

        break;
      default:
        break;
    }
    append_line(out.fields, text, value);
  };
  detail::for_each_field(msg, pass);
  forwarded_for.append(forwarded_for.empty() ? "" : ", ").append(peer_ip);
  append_line(out.fields, "X-Forwarded-For", forwarded_for);
  const std::string_view own_proto = client.tls ? "https" : "http";
  append_line(out.fields, "X-Forwarded-Proto",
              forwarded_proto.empty() ? own_proto : forwarded_proto);
  if (forwarded_host.empty()) forwarded_host = host;
  if (!forwarded_host.empty()) append_line(out.fields, "X-Forwarded-Host", forwarded_host);
  if (policy.forwarded) {
    // for= is the address this hop saw (quoted with brackets when IPv6, RFC 7239 §6), host=
    // quoted when it is not a plain token (a port's colon is not a token character).
    forwarded.append(forwarded.empty() ? "" : ", ").append("for=");
    if (peer_ip.find(':') != std::string_view::npos)
      forwarded.append("\"[").append(peer_ip).append("]\"");
    else
      forwarded.append(peer_ip);
    forwarded.append(";proto=").append(own_proto);
    if (!host.empty() && host.find_first_of("\"\\") == std::string_view::npos)
      forwarded.append(";host=\"").append(host).append("\"");
    append_line(out.fields, "Forwarded", forwarded);
  }
  if (policy.forward_client_cert && !client.cert_subject.empty()) {
    append_line(out.fields, "X-Client-Cert-Subject", client.cert_subject);
    if (!client.cert_san.empty()) append_line(out.fields, "X-Client-Cert-SAN", client.cert_san);
  }
  append_list_value(via, kVia);
  append_line(out.fields, "Via", via);

  out.chunked = false;
  if (stream != nullptr) {
    out.body.clear();
    if (auto length = stream->length()) {
      append_line(out.fields, "Content-Length", std::to_string(*length));
    } else {
      out.chunked = true;
      append_line(out.fields, "Transfer-Encoding", "chunked");
    }
    return;
  }
  out.body = std::move(msg.body());
  // A body (even empty, for methods that carry one) always goes with a Content-Length.
  if (!out.body.empty() || out.method == http::verb::post || out.method == http::verb::put ||
      out.method == http::verb::patch) {
    append_line(out.fields, "Content-Length", std::to_string(out.body.size()));
  }
}

std::string_view upstream_host(const ForwardingPolicy& policy, const Endpoint& endpoint,
                               std::string_view client_host) {
  if (policy.host_rewrite.empty())
    return client_host.empty() ? std::string_view(endpoint.host_header) : client_host;
  if (policy.host_rewrite == "endpoint") return endpoint.host_header;
  return policy.host_rewrite;
}

void serialize_head(const UpstreamRequest& request, std::string_view host, std::string& out) {
  out.clear();
  out.append(request.method_text).append(" ").append(request.target).append(" HTTP/1.1\r\n");
  append_line(out, "Host", host);
  out.append(request.fields).append("\r\n");
}

bool keeps_alive(const http::fields& fields, unsigned version, bool beast_keep_alive) {
  if (!beast_keep_alive || version != 10) return beast_keep_alive;
  for (const auto& f : fields) {
    if (f.name() != http::field::connection && f.name() != http::field::proxy_connection) continue;
    const bool no_close = detail::for_each_list_item(
        {f.value().data(), f.value().size()},
        [](std::string_view token) { return !beast::iequals(token, "close"); });
    if (!no_close) return false;
  }
  return true;
}

}  // namespace sluice::upstream
