// GatewayServices — what the gateway shares with the middlewares, handlers and config sections
// it builds: the clock, the metrics registry, and typed slots for state that outlives a
// reload (breaker registries, limiter tables, fault switches, ...).
#pragma once

#include <memory>

#include "sluice/clock.hpp"
#include "sluice/typed_slots.hpp"

namespace prometheus {
class Registry;
}

namespace sluice {

namespace gateway {
struct LoadedConfig;
}

struct GatewayServices {
  const Clock* clock = &system_steady_clock();
  std::shared_ptr<prometheus::Registry> metrics;  // never null in the gateway
  TypedSlots shared;                              // lives as long as the process
  // The config being loaded, while a load runs (loads are serialized); factories use it to
  // reach config-level objects such as upstream clusters or observers.
  gateway::LoadedConfig* building = nullptr;
};

}  // namespace sluice
