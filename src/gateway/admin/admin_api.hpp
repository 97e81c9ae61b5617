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
#include "sluice/extension/admin_endpoint.hpp"

namespace sluice::gateway {

class Gateway;

// Also the AdminView that contributed endpoints (extension/admin_endpoint.hpp) see.
class AdminApi final : public server::Dispatcher, public extension::AdminView {
 public:
  explicit AdminApi(Gateway& gateway) : gateway_(gateway) {}
  void dispatch(Exchange& ex, server::DispatchState* state, std::function<void()> done) override;

  GatewayServices& services() override;
  std::shared_ptr<const ConfigBuild> config() const override;
  std::vector<extension::RouteView> routes() const override;

 private:
  void route(Exchange& ex);
  void routes(Exchange& ex);
  void edit_middleware(Exchange& ex, const std::vector<std::string>& parts);
  bool authorized(Exchange& ex);

  Gateway& gateway_;
};

}  // namespace sluice::gateway
