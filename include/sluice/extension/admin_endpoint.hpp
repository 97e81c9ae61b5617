// Admin endpoints contributed by a mechanism's own folder (/breakers, /faults, /rollouts,
// /stats/middlewares, ...), and AdminView, what such an endpoint may see of the running host:
// the per-process services, the config being served (its ConfigBuild) and the routes' chains.
// With an admin token configured, every request is checked against it before any endpoint sees
// it; the admin listener binds loopback by default and is never the public one.
//
//   bool handle(Exchange& ex, AdminView& host) {
//     if (ex.request().path() != "/hello") return false;   // not mine: the next endpoint
//     answer_json(ex, 200, {{"routes", host.routes().size()}});
//     return true;
//   }
//   const AdminEndpointRegistrar endpoint({"/hello", handle});
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"
#include "sluice/services.hpp"

namespace sluice::extension {

// One route of the config being served, with its chain (edits through the chain are live).
struct RouteView {
  std::string name;
  std::shared_ptr<Chain> chain;
};

class AdminView {
 public:
  virtual ~AdminView() = default;
  virtual GatewayServices& services() = 0;
  // The config being served; held by the caller for the time it uses it.
  virtual std::shared_ptr<const ConfigBuild> config() const = 0;
  virtual std::vector<RouteView> routes() const = 0;
};

struct AdminEndpoint {
  std::string prefix;  // e.g. "/breakers"
  // Answers through ex and returns true when the path is its own.
  std::function<bool(Exchange& ex, AdminView& host)> handle;
  // Where `handle` runs. The admin listener's thread has a file table of its own
  // (core/own_file_table.hpp): a descriptor the workers made (a queue's files, the eventfd an
  // Asio post to a queue's or a Redis client's thread writes to) is another file there, or none.
  // So by default `handle` runs on the gateway's main thread, the admin thread waiting for it
  // (with one worker, that is the worker: keep it short). kAdminThread for an endpoint that only
  // reads and writes memory (counters, a chain edit, a breaker's state).
  enum class Thread { kMain, kAdminThread };
  Thread thread = Thread::kMain;
};
void register_admin_endpoint(AdminEndpoint endpoint);
// The registered endpoints, in registration order.
std::vector<AdminEndpoint> admin_endpoints();

struct AdminEndpointRegistrar {
  explicit AdminEndpointRegistrar(AdminEndpoint e) { register_admin_endpoint(std::move(e)); }
};

}  // namespace sluice::extension
