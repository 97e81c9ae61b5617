// GatewayServices — what the gateway shares with the middlewares and handlers it builds from
// config: the clock, the metrics registry, upstream clusters, and state kept across reloads.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "sluice/clock.hpp"

namespace prometheus {
class Registry;
}

namespace sluice {

struct GatewayServices {
  const Clock* clock = &system_steady_clock();
  std::shared_ptr<prometheus::Registry> metrics;  // may be null in unit tests
};

}  // namespace sluice
