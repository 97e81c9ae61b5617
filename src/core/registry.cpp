#include "sluice/registry.hpp"

#include <cstdio>
#include <cstdlib>

namespace sluice {

MiddlewareRegistry& MiddlewareRegistry::global() {
  static MiddlewareRegistry registry;
  return registry;
}

std::string MiddlewareRegistry::add(std::string type, MiddlewareFactory factory) {
  std::lock_guard lock(mutex_);
  for (const auto& [name, f] : factories_) {
    if (name == type) return "middleware type \"" + type + "\" is already registered";
  }
  factories_.emplace_back(std::move(type), std::move(factory));
  return {};
}

const MiddlewareFactory* MiddlewareRegistry::find(std::string_view type) const {
  std::lock_guard lock(mutex_);
  for (const auto& [name, f] : factories_) {
    if (name == type) return &f;  // entries are never removed, so the pointer stays valid
  }
  return nullptr;
}

std::vector<std::string> MiddlewareRegistry::types() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_)
    out.push_back(name);
  return out;
}

MiddlewareRegistrar::MiddlewareRegistrar(std::string type, MiddlewareFactory factory) {
  auto error = MiddlewareRegistry::global().add(type, std::move(factory));
  if (!error.empty()) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
    std::abort();  // two built-ins with one name is a build mistake, not a run-time condition
  }
}

}  // namespace sluice
