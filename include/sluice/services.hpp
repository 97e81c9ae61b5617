// sluice::GatewayServices and sluice::ConfigBuild — what a host shares with the middlewares,
// observers, handlers and config sections it builds, one struct per lifetime above the request:
//
// - GatewayServices, per process: the clock, the metrics registry, and typed slots for state
//   that outlives a reload (breaker registries, limiter tables, fault switches, pools).
// - ConfigBuild, per config load: the objects one load builds and every chain of that load
//   shares (upstream clusters, exporters, the metrics handle), its observers, and what SIGUSR1
//   reopens. A reload builds a new one; requests on the old chains keep the old one alive.
// - Per request: the Context (sluice/context.hpp, sluice/instance_state.hpp).
//
// A factory reaches both through its MiddlewareSpec (sluice/registry.hpp):
//
//   auto& registry = spec.services->shared.get_or_emplace<BreakerRegistry>();   // per process
//   const auto* clusters = spec.build ? spec.build->extras.get<ClusterSet>() : nullptr;
//
// An embedder that builds chains itself may pass null for both, or its own instances.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/clock.hpp"
#include "sluice/typed_slots.hpp"

namespace prometheus {
class Registry;
}

namespace sluice {

class Observer;

struct GatewayServices {
  const Clock* clock = &system_steady_clock();
  std::shared_ptr<prometheus::Registry> metrics;  // never null in the gateway
  TypedSlots shared;                              // lives as long as the process
};

struct ConfigBuild {
  ConfigBuild() = default;
  ConfigBuild(const ConfigBuild&) = delete;
  ConfigBuild& operator=(const ConfigBuild&) = delete;

  std::string source;  // the config file's path, or "<embedded default>"
  // Config-level objects built by sections (upstream clusters, exporters, ...), by type.
  std::shared_ptr<TypedSlots> extras = std::make_shared<TypedSlots>();
  // Observers put on every route's chain (metrics, tracing, access log), from config sections.
  std::vector<std::shared_ptr<Observer>> observers;
  // Run on SIGUSR1 (e.g. the access log reopens its file after logrotate).
  std::vector<std::function<void()>> on_reopen;
};

}  // namespace sluice
