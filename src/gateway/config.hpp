// Gateway config: loading and validating sluice.yaml into settings and a RouteTable.
// Every error carries file:line:column; a failed load changes nothing.
//
//   auto outcome = load_config_file("sluice.yaml", previous.get(), services);
//   if (!outcome.ok()) for (auto& e : outcome.errors) std::cerr << e << "\n";
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gateway/route_table.hpp"
#include "net/real_ip/real_ip.hpp"
#include "server/limits.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"
#include "sluice/settings.hpp"
#include "sluice/typed_slots.hpp"

namespace sluice::server {
class TlsContext;
}

namespace sluice::gateway {

struct ListenAddress {
  std::string host;
  unsigned short port = 0;
  std::string text() const;
};

// A public listener: `listen: host:port`, or a map with options:
//   listen: [ { address: "0.0.0.0:8080", proxy_protocol: true } ]
struct ListenerSettings : ListenAddress {
  bool proxy_protocol = false;  // a PROXY protocol v1/v2 header precedes each connection
  // TLS termination; built from the certificate files at each load. Null: plain HTTP.
  std::shared_ptr<const server::TlsContext> tls;
};

struct GatewaySettings {
  std::vector<ListenerSettings> listeners;
  int workers = 0;  // 0: one per CPU
  // `worker_cpu_affinity: auto`: worker i pinned to CPU i (of the allowed ones), its listener
  // taking the connections that arrive on that CPU (server/worker_cpus.hpp). Off by default.
  bool worker_cpu_affinity = false;
  server::ServerLimits limits;
  std::chrono::milliseconds drain_timeout{10'000};
  bool admin_enabled = true;
  ListenAddress admin{"127.0.0.1", 9901};
  std::string admin_token;                    // bearer token for every admin endpoint; empty: none
  std::vector<std::string> admin_open_paths;  // answered without the token (probes only)
  std::string log_level = "info";
  // The client address behind trusted proxies (`real_ip:`); null: the peer is the client.
  std::shared_ptr<const net::RealIpPolicy> real_ip;
};

// One load of sluice.yaml: the ConfigBuild that sections and factories fill (source, extras,
// observers, reopen hooks; sluice/services.hpp), plus what the core loader reads itself.
struct LoadedConfig : ConfigBuild {
  GatewaySettings settings;
  std::shared_ptr<RouteTable> routes;
  nlohmann::json effective;  // the config as JSON, for GET /config
  // Middleware instances by "route/name": an unchanged one is reused by the next load.
  std::map<std::string, std::pair<std::string, std::shared_ptr<Middleware>>> instances;
};

struct LoadOutcome {
  std::shared_ptr<LoadedConfig> config;
  std::vector<std::string> errors;
  bool ok() const { return errors.empty() && config != nullptr; }
};

LoadOutcome load_config_file(const std::string& path, const LoadedConfig* previous,
                             GatewayServices& services);
LoadOutcome load_config_text(const std::string& text, const std::string& source_name,
                             const LoadedConfig* previous, GatewayServices& services);

// The config used when `sluice run` gets no -c: hello and /echo on 127.0.0.1:8080.
const std::string& default_config_text();

// Settings whose change needs a restart (listen addresses, workers, worker_cpu_affinity, admin
// address); empty if none changed.
std::vector<std::string> restart_required_changes(const GatewaySettings& before,
                                                  const GatewaySettings& after);

}  // namespace sluice::gateway
