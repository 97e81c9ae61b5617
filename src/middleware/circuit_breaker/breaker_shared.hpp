// The gateway-wide BreakerRegistry, kept in GatewayServices::shared (a fresh one when there are
// no services, e.g. in unit tests). Used by the middleware's factory and the admin API.
#pragma once

#include <memory>

#include "middleware/circuit_breaker/breaker_registry.hpp"

namespace sluice {
struct GatewayServices;
}

namespace sluice::middleware {

// `max_breakers` applies when the registry is created (the first breaker middleware's value).
std::shared_ptr<BreakerRegistry> shared_breaker_registry(GatewayServices* services,
                                                         std::size_t max_breakers = 10000);
// The registry if one was created, else null.
std::shared_ptr<BreakerRegistry> find_breaker_registry(GatewayServices& services);

}  // namespace sluice::middleware
