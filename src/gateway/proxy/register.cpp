// Registers the `proxy` handler kind. The `upstreams:` section is in upstreams_section.cpp.
#include "core/config_errors.hpp"
#include "gateway/proxy/proxy_handler.hpp"
#include "sluice/extension/handler_kind.hpp"
#include "upstream/upstream_faults.hpp"
#include "upstream/upstreams_section.hpp"

namespace sluice::gateway::proxy {
namespace {

std::shared_ptr<Handler> make_proxy(Settings& s, const extension::HandlerSpec& spec) {
  auto route = std::make_shared<upstream::ProxyRoute>();
  const std::string name = s.string("cluster");
  const upstream::ClusterSet* set = spec.build.extras->get<upstream::ClusterSet>();
  if (name.empty()) {
    s.error("cluster", "missing upstream cluster name (a key of the top-level `upstreams:`)");
  } else if (set == nullptr || !(route->cluster = set->find(name))) {
    const auto names = set != nullptr ? set->names() : std::vector<std::string>{};
    s.error("cluster", "unknown upstream cluster \"" + name + "\"" + did_you_mean(name, names) +
                           (names.empty() ? " (no clusters under `upstreams:`)" : ""));
  }
  route->timeout = s.millis("timeout_ms", route->timeout);
  route->forwarding.host_rewrite = s.string("host_rewrite");
  route->forwarding.strip_prefix = s.string("strip_prefix");
  if (!route->forwarding.strip_prefix.empty() && route->forwarding.strip_prefix[0] != '/')
    s.error("strip_prefix", "must start with '/'");
  for (const auto& cidr : s.strings("trusted_proxies")) {
    std::string error;
    if (!route->forwarding.trusted_proxies.add(cidr, error)) s.error("trusted_proxies", error);
  }
  if (const auto* real_ip = spec.build.extras->get<net::RealIpOfConfig>())
    route->forwarding.real_ip = real_ip->policy;
  route->faults = &spec.services.shared.get_or_emplace<upstream::UpstreamFaults>();
  route->forwarding.forward_client_cert = s.boolean("forward_client_cert", false);
  route->forwarding.forwarded = s.boolean("forwarded", false);
  route->websocket = s.boolean("websocket", false);
  route->websocket_idle_timeout =
      s.millis("websocket_idle_timeout_ms", route->websocket_idle_timeout);
  if (!route->cluster) return nullptr;
  return std::make_shared<ProxyHandler>(std::move(route));
}

const extension::HandlerRegistrar proxy_kind("proxy", make_proxy);

}  // namespace
}  // namespace sluice::gateway::proxy
