#include "upstream/upstreams_section.hpp"

#include <yaml-cpp/yaml.h>

#include "security/reload_on_change.hpp"
#include "security/watched_file.hpp"
#include "sluice/extension/config_section.hpp"

namespace sluice::upstream {

namespace {

// The TLS files' identity (size, mtime, inode): renewed files make a new cluster (and TLS
// context) at the next reload, unchanged ones keep the cluster and its pooled connections.
std::string tls_files_identity(const UpstreamTlsSettings& tls) {
  std::string out;
  for (const std::string& path : {tls.ca_file.empty() ? std::string(kSystemCaBundle) : tls.ca_file,
                                  tls.cert_file, tls.key_file}) {
    if (path.empty()) continue;
    const auto stamp = security::stamp_of(path);
    out += "\n" + path + " " + std::to_string(stamp.size) + " " + std::to_string(stamp.mtime_ns) +
           " " + std::to_string(stamp.inode);
  }
  return out;
}

// The cluster names of the section, in file order (Settings reads keys it knows by name).
std::vector<std::string> cluster_names(const Settings& section) {
  std::vector<std::string> names;
  YAML::Node node;
  try {
    // The section re-read from its canonical text; yaml-cpp can emit text it cannot read back
    // (a key of control characters, found by the config fuzz target): an error, never a throw
    // out of the loader (which would end the process on a reload).
    node = YAML::Load(section.canonical());
  } catch (const YAML::Exception& e) {
    section.error("", std::string("cannot read the cluster names: ") + e.what());
    return names;
  }
  if (!node.IsMap()) return names;
  for (const auto& kv : node)
    names.push_back(kv.first.as<std::string>(""));
  return names;
}

void load_upstreams(Settings& section, ConfigBuild& config, GatewayServices& services) {
  auto& set = config.extras->emplace<ClusterSet>();
  auto& registry = services.shared.get_or_emplace<ClusterRegistry>();
  for (const auto& name : cluster_names(section)) {
    Settings s = section.child(name);
    ClusterConfig cc = read_cluster_config(name, s);
    std::vector<std::unique_ptr<Endpoint>> endpoints;
    std::string identity = name + "\n" + s.canonical();
    std::shared_ptr<const UpstreamTls> tls;
    if (cc.tls && s.ok()) {
      std::vector<std::string> hosts;
      for (const auto& text : cc.endpoints) {
        std::string host;
        std::uint16_t port = 0;
        split_host_port(text, host, port);
        hosts.push_back(host);
      }
      UpstreamTlsError error;
      tls = UpstreamTls::build(*cc.tls, hosts, error);
      if (!tls) {
        Settings at = s.child("tls");
        at.accept_all();  // read by read_cluster_config; here only for the error's position
        at.error(error.field, error.message);
      }
      identity += tls_files_identity(*cc.tls);
      // Renewed files make a new cluster at the next load; watching them makes that load come
      // by itself, as for the listeners' certificates.
      for (const std::string& path :
           {cc.tls->ca_file.empty() ? std::string(upstream::kSystemCaBundle) : cc.tls->ca_file,
            cc.tls->cert_file, cc.tls->key_file})
        if (!path.empty())
          config.extras->get_or_emplace<security::ReloadOnChange>().paths.push_back(path);
    }
    for (const auto& text : cc.endpoints) {
      std::string error;
      auto ep = resolve_endpoint(text, cc.tls.has_value(), error);
      if (!error.empty()) s.error("endpoints", error);
      if (!ep) continue;
      identity +=
          "\n" + ep->address.address().to_string() + ":" + std::to_string(ep->address.port());
      endpoints.push_back(std::move(ep));
    }
    if (!s.ok()) continue;
    std::lock_guard lock(registry.mutex);
    std::erase_if(registry.live, [](const auto& kv) { return kv.second.expired(); });
    std::shared_ptr<Cluster> cluster = registry.live[identity].lock();
    if (!cluster) {
      cluster = std::make_shared<Cluster>(cc, std::move(endpoints), *services.clock,
                                          make_cluster_metrics(services.metrics.get(), name),
                                          std::move(tls));
      cluster->start_health_checks();
      registry.live[identity] = cluster;
    }
    set.clusters[name] = cluster;
  }
}

const extension::ConfigSectionRegistrar upstreams_section("upstreams", load_upstreams);

}  // namespace
}  // namespace sluice::upstream
