// AdminApi — the admin listener's dispatcher (127.0.0.1:9901 by default; never the public
// listener): health, readiness, metrics, the effective config (secrets redacted), routes and
// their chains, chain edits without reload, and reload. With `admin.token` set, every endpoint
// needs `Authorization: Bearer <token>` (except the probes listed in `admin.open_paths`).
//
//   curl 127.0.0.1:9901/routes
//   curl -X POST 127.0.0.1:9901/routes/api/middlewares/limiter/disable
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "server/dispatcher.hpp"

namespace sluice::gateway {

class Gateway;

// An admin endpoint contributed by a mechanism's own folder (breakers, faults, stats).
// `handle` answers through ex and returns true when the path is its own; with an admin token
// configured, every request is checked against it before any endpoint sees it.
struct AdminEndpoint {
  std::string prefix;  // e.g. "/breakers"
  std::function<bool(Exchange& ex, Gateway& gateway)> handle;
};
void register_admin_endpoint(AdminEndpoint endpoint);
struct AdminEndpointRegistrar {
  explicit AdminEndpointRegistrar(AdminEndpoint e) { register_admin_endpoint(std::move(e)); }
};

class AdminApi final : public server::Dispatcher {
 public:
  explicit AdminApi(Gateway& gateway) : gateway_(gateway) {}
  void dispatch(Exchange& ex, server::DispatchState* state, std::function<void()> done) override;

 private:
  void route(Exchange& ex);
  void routes(Exchange& ex);
  void edit_middleware(Exchange& ex, const std::vector<std::string>& parts);
  bool authorized(Exchange& ex);

  Gateway& gateway_;
};

}  // namespace sluice::gateway
