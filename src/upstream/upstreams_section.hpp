// The `upstreams:` config section: clusters by name, resolved at every load. A cluster whose
// settings and resolved addresses are unchanged is the same object after a reload (kept in
// GatewayServices::shared), so its connection pools, ejections and health verdicts survive.
//
//   upstreams:
//     backend: { endpoints: ["127.0.0.1:9000"], lb: round_robin }
//   ...  auto* set = config.extras->get<ClusterSet>(); auto c = set->find("backend");
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "upstream/cluster.hpp"

namespace sluice::upstream {

// The clusters of one loaded config (LoadedConfig::extras).
struct ClusterSet {
  std::map<std::string, std::shared_ptr<Cluster>, std::less<>> clusters;
  std::shared_ptr<Cluster> find(std::string_view name) const {
    auto it = clusters.find(name);
    return it == clusters.end() ? nullptr : it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, c] : clusters)
      out.push_back(name);
    return out;
  }
};

// Live clusters by identity (name, canonical settings, resolved addresses), process-wide
// (GatewayServices::shared). Weak: a cluster lives as long as some loaded config uses it.
struct ClusterRegistry {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<Cluster>> live;
};

}  // namespace sluice::upstream
