// Handler kinds by name (`respond`, `echo`, `proxy`): what ends a route's chain. A kind
// registers itself from its own folder; the config loader builds one handler per route.
//
//   const HandlerRegistrar kind("hello", [](Settings& s, const HandlerSpec& spec) {
//     return std::make_shared<HelloHandler>(s.string("text"));
//   });
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/middleware.hpp"
#include "sluice/services.hpp"
#include "sluice/settings.hpp"

namespace sluice::extension {

// What a handler factory knows: the route, the per-process services, and the config load it is
// part of (its config-level objects, e.g. the upstream clusters).
struct HandlerSpec {
  std::string route;
  GatewayServices& services;
  const ConfigBuild& build;
};

// Builds a handler from its settings; returns nullptr after reporting errors through them.
using HandlerFactory =
    std::function<std::shared_ptr<Handler>(Settings& settings, const HandlerSpec& spec)>;

void register_handler_kind(std::string kind, HandlerFactory factory);
const HandlerFactory* find_handler_kind(std::string_view kind);
std::vector<std::string> handler_kinds();

struct HandlerRegistrar {
  HandlerRegistrar(std::string kind, HandlerFactory factory) {
    register_handler_kind(std::move(kind), std::move(factory));
  }
};

}  // namespace sluice::extension
