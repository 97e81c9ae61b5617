// Plugin loading: a shared object is hashed (SHA-256) before it is mapped, must speak the
// host's ABI version, and may register only the middleware types its allow-list names.
//
//   auto r = load_plugin({"/opt/p/hello.so", "9f86d0...", {"hello_header"}},
//                        MiddlewareRegistry::global());
//   if (!r.error.empty()) report(r.error);
//
// Lifetime: a loaded library is never unloaded (no dlclose). The registry holds its factories
// for the life of the process and middleware instances hold C function pointers into it, so
// unloading would need every chain that ever used it to be gone; a plugin costs a mapping, so
// sluice keeps it. To change a plugin's code, restart the process.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/registry.hpp"

namespace sluice::plugins {

struct PluginRequest {
  std::string path;    // absolute
  std::string sha256;  // expected, lowercase hex
  std::vector<std::string> allow_types;
};

struct PluginLibrary {
  std::string path;
  std::string sha256;
  std::vector<std::string> types;  // what it registered
  void* handle = nullptr;          // from dlopen; never closed
};

struct PluginLoadResult {
  std::shared_ptr<const PluginLibrary> library;
  std::string error;  // why it was refused; empty on success
};

// The lowercase hex SHA-256 of `bytes` (OpenSSL).
std::string sha256_hex(std::string_view bytes);

// Hashes, checks, maps and registers. On refusal nothing is registered.
PluginLoadResult load_plugin(const PluginRequest& request, MiddlewareRegistry& registry);

}  // namespace sluice::plugins
