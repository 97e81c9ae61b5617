// Config sections and middleware decorators: how a mechanism outside the core loader reads its
// part of sluice.yaml. A section (`upstreams:`, `tracing:`, `access_log:`, ...) runs once per
// config load, in registration order, before the routes are built, and fills that load's
// ConfigBuild (sluice/services.hpp): config-level objects in `extras`, observers, reopen hooks.
// A decorator wraps a middleware built from any config item that carries its keys (`rollout:`,
// `guard:`).
//
//   const ConfigSectionRegistrar tracing("tracing",
//       [](Settings& s, ConfigBuild& build, GatewayServices& services) {
//         build.observers.push_back(make_tracing_observer(s, services));
//       });
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/registry.hpp"
#include "sluice/services.hpp"
#include "sluice/settings.hpp"

namespace sluice::extension {

// Reports errors through `settings` (file:line:column); a load with errors changes nothing.
using ConfigSection =
    std::function<void(Settings& settings, ConfigBuild& build, GatewayServices& services)>;
void register_config_section(std::string key, ConfigSection section);
// Calls `visit(key, section)` for each section in registration order.
void for_each_config_section(
    const std::function<void(const std::string& key, const ConfigSection& section)>& visit);

struct ConfigSectionRegistrar {
  ConfigSectionRegistrar(std::string key, ConfigSection section) {
    register_config_section(std::move(key), std::move(section));
  }
};

// Returns `inner` unchanged when `item` has none of the decorator's keys. Applied in
// registration order to new instances (a reused instance is already wrapped).
using MiddlewareDecorator = std::function<std::shared_ptr<Middleware>(
    std::shared_ptr<Middleware> inner, const Settings& item, const MiddlewareSpec& spec)>;
void register_middleware_decorator(MiddlewareDecorator decorator);
// Filled by static registrars before main(); read-only afterwards.
const std::vector<MiddlewareDecorator>& middleware_decorators();

struct MiddlewareDecoratorRegistrar {
  explicit MiddlewareDecoratorRegistrar(MiddlewareDecorator d) {
    register_middleware_decorator(std::move(d));
  }
};

}  // namespace sluice::extension
