// sluice::MiddlewareRegistry — middleware factories by type name. Built-in middlewares
// register themselves from their own folder; plugins register through the same registry.
//
//   static sluice::MiddlewareRegistrar reg("hello", [](const sluice::MiddlewareSpec& spec,
//       sluice::Settings& s) { return std::make_shared<Hello>(spec.name, s.string("text")); });
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/middleware.hpp"
#include "sluice/settings.hpp"

namespace sluice {

struct GatewayServices;  // sluice/services.hpp: per-process services; may be null
struct ConfigBuild;      // sluice/services.hpp: what the config load built; may be null

// What a factory knows about the middleware it builds.
struct MiddlewareSpec {
  std::string name;   // instance name (defaults to the type)
  std::string type;   // registered type name
  std::string route;  // the route whose chain it joins
  GatewayServices* services = nullptr;
  const ConfigBuild* build = nullptr;
};

// Returns the middleware, or nullptr after reporting errors through `settings`.
using MiddlewareFactory =
    std::function<std::shared_ptr<Middleware>(const MiddlewareSpec& spec, Settings& settings)>;

class MiddlewareRegistry {
 public:
  static MiddlewareRegistry& global();

  // Returns an error message (empty on success); a type is registered once.
  std::string add(std::string type, MiddlewareFactory factory);
  const MiddlewareFactory* find(std::string_view type) const;
  std::vector<std::string> types() const;

 private:
  mutable std::mutex mutex_;
  std::deque<std::pair<std::string, MiddlewareFactory>> factories_;  // stable addresses
};

struct MiddlewareRegistrar {
  MiddlewareRegistrar(std::string type, MiddlewareFactory factory);
};

}  // namespace sluice
