// LoadBalancer — picks the endpoint for one try: round robin, or least request (the less busy
// of two random candidates, "power of two choices", as Envoy does). Endpoints that are ejected
// or fail their health check are skipped, unless fewer than panic_threshold_percent of them are
// usable: then all are used (a cluster is never emptied by its own health checks).
//
//   LoadBalancer lb(LbPolicy::kRoundRobin, 50);
//   int i = lb.pick(endpoints, clock.now(), /*avoid=*/-1);   // -1: no endpoint at all
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "upstream/cluster_config.hpp"
#include "upstream/endpoint.hpp"

namespace sluice::upstream {

class LoadBalancer {
 public:
  LoadBalancer(LbPolicy policy, int panic_threshold_percent)
      : policy_(policy), panic_threshold_percent_(panic_threshold_percent) {}

  // `avoid` (a previous try's endpoint, or -1) is skipped when another endpoint is usable.
  int pick(const std::vector<std::unique_ptr<Endpoint>>& endpoints, SteadyTime now, int avoid);

  // Whether pick() reads the endpoints' in-flight counts (Endpoint::active): least request with
  // more than one endpoint. Elsewhere the count is read by nobody, so calls do not keep it.
  bool reads_in_flight(std::size_t endpoints) const {
    return policy_ == LbPolicy::kLeastRequest && endpoints > 1;
  }

 private:
  LbPolicy policy_;
  int panic_threshold_percent_;
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace sluice::upstream
