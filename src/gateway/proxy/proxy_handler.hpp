// ProxyHandler — the `proxy` handler kind: forwards the request to an upstream cluster and
// answers with the upstream's response (or a JSON 502/504).
//
//   handler: { type: proxy, cluster: backend, timeout_ms: 5000, host_rewrite: endpoint,
//              strip_prefix: /api, trusted_proxies: ["10.0.0.0/8"] }
#pragma once

#include <memory>

#include "sluice/exchange.hpp"
#include "upstream/upstream_call.hpp"

namespace sluice::gateway::proxy {

class ProxyHandler final : public Handler {
 public:
  explicit ProxyHandler(std::shared_ptr<const upstream::ProxyRoute> route)
      : route_(std::move(route)) {}
  std::string_view kind() const override { return "proxy"; }
  Decision handle(Exchange& ex) override;

 private:
  std::shared_ptr<const upstream::ProxyRoute> route_;
};

}  // namespace sluice::gateway::proxy
