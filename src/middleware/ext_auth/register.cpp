#include "middleware/ext_auth/ext_auth_middleware.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

std::shared_ptr<Middleware> build(const MiddlewareSpec& spec, Settings& s) {
  prometheus::Registry* metrics = spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
  ExtAuthConfig config;
  const auto address = s.string("address");
  const auto colon = address.rfind(':');
  if (address.empty())
    s.error("address", "is required: the authorization service as \"host:port\"");
  else if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    s.error("address", "must be host:port, got \"" + address + "\"");
  else {
    // An implicit one-endpoint cluster, resolved now (upstream/detached_call.hpp).
    std::string error;
    config.endpoint = upstream::DetachedTarget::fixed(address, clock, error);
    if (config.endpoint.empty()) s.error("address", error);
  }
  config.path = s.string("path", config.path);
  if (config.path.empty() || config.path.front() != '/') s.error("path", "must start with '/'");
  config.timeout = s.millis("timeout_ms", config.timeout);
  if (config.timeout.count() <= 0) s.error("timeout_ms", "must be > 0");
  config.request_headers = s.strings("request_headers");
  if (!s.has("request_headers")) config.request_headers = {"Authorization", "Cookie"};
  config.response_headers = s.strings("response_headers");
  config.failure_mode_allow = s.boolean("failure_mode_allow", false);
  config.identity = Identity::read(s);
  AuthCounters counters(metrics, "ext_auth", spec.name,
                        {"allowed", "denied", "failed_open", "failed_closed"});
  return std::make_shared<ExtAuthMiddleware>(spec.name, std::move(config), std::move(counters),
                                             clock);
}

const MiddlewareRegistrar registrar("ext_auth", build);

}  // namespace
}  // namespace sluice::middleware
