// Handler kinds by name (`respond`, `echo`, `proxy`): what ends a route's chain.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/services.hpp"
#include "sluice/middleware.hpp"
#include "sluice/settings.hpp"

namespace sluice::gateway {

// Builds a handler from its settings; returns nullptr after reporting errors through them.
using HandlerFactory =
    std::function<std::shared_ptr<Handler>(Settings& settings, GatewayServices& services)>;

void register_handler_kind(std::string kind, HandlerFactory factory);
const HandlerFactory* find_handler_kind(std::string_view kind);
std::vector<std::string> handler_kinds();

struct HandlerRegistrar {
  HandlerRegistrar(std::string kind, HandlerFactory factory) {
    register_handler_kind(std::move(kind), std::move(factory));
  }
};

}  // namespace sluice::gateway
