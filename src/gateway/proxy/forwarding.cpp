#include "gateway/proxy/forwarding.hpp"

#include <boost/beast/core/string.hpp>

#include "core/http_message.hpp"
#include "gateway/proxy/endpoint.hpp"

namespace sluice::gateway::proxy {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {
constexpr std::string_view kVia = "1.1 sluice";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection", "keep-alive",        "te",
                                                "trailer",    "transfer-encoding", "upgrade"};
  for (auto n : kNames)
    if (beast::iequals(name, n)) return true;
  return name.size() >= 6 && beast::iequals(name.substr(0, 6), "proxy-");
}

// Is `name` one of the comma-separated tokens of the Connection header values?
bool named_by_connection(std::string_view name, const std::vector<std::string_view>& tokens) {
  for (auto t : tokens)
    if (beast::iequals(t, name)) return true;
  return false;
}

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}
}  // namespace

void strip_hop_by_hop(http::fields& fields) {
  std::vector<std::string_view> tokens;
  std::vector<std::string> storage;
  for (auto it = fields.find(http::field::connection);
       it != fields.end() && it->name() == http::field::connection; ++it) {
    storage.emplace_back(sv(it->value()));
  }
  for (const auto& value : storage) {
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      auto token = trim(rest.substr(0, comma));
      if (!token.empty()) tokens.push_back(token);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  for (auto it = fields.begin(); it != fields.end();) {
    const auto name = sv(it->name_string());
    if (is_hop_by_hop(name) || (!tokens.empty() && named_by_connection(name, tokens))) {
      it = fields.erase(it);
    } else {
      ++it;
    }
  }
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

void build_upstream_request(Request& in, std::string_view client_ip, const ForwardingPolicy& policy,
                            UpstreamRequest& out) {
  auto& msg = in.native();
  out.method(msg.method());
  if (msg.method() == http::verb::unknown) out.method_string(msg.method_string());
  out.target(upstream_target(sv(msg.target()), policy.strip_prefix));
  out.version(11);

  const bool trusted = policy.trusted_proxies.contains(client_ip);
  std::string forwarded_for;
  std::string forwarded_proto;
  std::string forwarded_host;
  std::string via;
  http::fields& f = msg.base();
  strip_hop_by_hop(f);
  for (const auto& field : f) {
    const auto name = field.name();
    const auto value = sv(field.value());
    switch (name) {
      case http::field::host:
      case http::field::content_length:
      case http::field::expect:  // 100-continue was answered by sluice itself
        continue;
      case http::field::via:
        via += (via.empty() ? "" : ", ") + std::string(value);
        continue;
      default:
        break;
    }
    const auto n = sv(field.name_string());
    if (beast::iequals(n, "x-forwarded-for")) {
      if (trusted) forwarded_for += (forwarded_for.empty() ? "" : ", ") + std::string(value);
      continue;
    }
    if (beast::iequals(n, "x-forwarded-proto")) {
      if (trusted && forwarded_proto.empty()) forwarded_proto = value;
      continue;
    }
    if (beast::iequals(n, "x-forwarded-host")) {
      if (trusted && forwarded_host.empty()) forwarded_host = value;
      continue;
    }
    if (name == http::field::unknown) {
      out.insert(field.name_string(), field.value());
    } else {
      out.insert(name, field.value());
    }
  }
  forwarded_for += (forwarded_for.empty() ? "" : ", ") + std::string(client_ip);
  out.set("X-Forwarded-For", forwarded_for);
  out.set("X-Forwarded-Proto", forwarded_proto.empty() ? "http" : forwarded_proto);
  const auto host = sv(msg[http::field::host]);
  if (!forwarded_host.empty())
    out.set("X-Forwarded-Host", forwarded_host);
  else if (!host.empty())
    out.set("X-Forwarded-Host", host);
  out.set(http::field::via, via.empty() ? std::string(kVia) : via + ", " + std::string(kVia));

  out.body() = std::move(msg.body());
  // A body (even empty, for methods that carry one) always goes with a Content-Length.
  if (!out.body().empty() || msg.method() == http::verb::post || msg.method() == http::verb::put ||
      msg.method() == http::verb::patch) {
    out.content_length(out.body().size());
  }
  out.keep_alive(true);
}

void serialize_head(const UpstreamRequest& request, std::string& out) {
  out.clear();
  const auto method = request.method_string();
  const auto target = request.target();
  out.append(method.data(), method.size()).append(" ");
  out.append(target.data(), target.size()).append(" HTTP/1.1\r\n");
  for (const auto& field : request) {
    const auto name = field.name_string();
    const auto value = field.value();
    out.append(name.data(), name.size()).append(": ");
    out.append(value.data(), value.size()).append("\r\n");
  }
  out.append("\r\n");
}

void set_upstream_host(UpstreamRequest& out, const ForwardingPolicy& policy,
                       const Endpoint& endpoint, std::string_view client_host) {
  if (policy.host_rewrite.empty()) {
    out.set(http::field::host,
            client_host.empty() ? std::string_view(endpoint.host_header) : client_host);
  } else if (policy.host_rewrite == "endpoint") {
    out.set(http::field::host, endpoint.host_header);
  } else {
    out.set(http::field::host, policy.host_rewrite);
  }
}

}  // namespace sluice::gateway::proxy
