// ProxyHandler — the `proxy` handler kind: forwards the request to an upstream cluster and
// answers with the upstream's response (or a JSON 502/504).
//
//   handler: { type: proxy, cluster: backend, timeout_ms: 5000, host_rewrite: endpoint,
//              strip_prefix: /api, trusted_proxies: ["10.0.0.0/8"] }
#pragma once

#include <memory>
#include <vector>

#include "sluice/exchange.hpp"
#include "upstream/upstream_call.hpp"

namespace sluice::gateway::proxy {

class ProxyHandler final : public Handler {
 public:
  explicit ProxyHandler(std::shared_ptr<const upstream::ProxyRoute> route);
  std::string_view kind() const override { return "proxy"; }
  Decision handle(Exchange& ex) override;

 private:
  // Every call owns its route (a call can outlive the exchange, and a reload can drop this
  // handler meanwhile), but through its worker's own reference count: a copy of one shared_ptr
  // per request would write one control block from every worker (issue 20). Each owner holds
  // the route and is a separate allocation of whole cache lines, so its count is written only
  // by the workers of its shard (observe::shard_index(): one worker each, up to 16).
  struct alignas(64) Owner {
    std::shared_ptr<const upstream::ProxyRoute> route;
  };
  std::shared_ptr<const upstream::ProxyRoute> for_this_worker() const;

  std::shared_ptr<const upstream::ProxyRoute> route_;
  std::vector<std::shared_ptr<const Owner>> owners_;  // one per shard
};

}  // namespace sluice::gateway::proxy
