// The `plugins:` config section: loads each listed plugin once per process, before the routes
// (and their middlewares) are built.
//
//   plugins:
//     - path: plugins/hello_plugin.so        # relative to the config file
//       sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//       allow_types: [hello_header]
#include <filesystem>
#include <map>
#include <mutex>

#include "plugins/plugin_loader.hpp"
#include "sluice/extension/config_section.hpp"

namespace sluice::plugins {
namespace {

// Process-lifetime: a reload that lists the same plugin (same file, same hash) reuses it.
struct LoadedPlugins {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const PluginLibrary>> by_path;
};

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string absolute_path(const std::string& path, const std::string& config_source) {
  std::filesystem::path p(path);
  if (p.is_relative() && !config_source.empty() && config_source.front() != '<') {
    p = std::filesystem::absolute(config_source).parent_path() / p;
  }
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(p, ec);
  return (ec ? p : canonical).string();
}

void load_entry(Settings& entry, const ConfigBuild& config, LoadedPlugins& loaded) {
  auto path_text = entry.string("path");
  auto sha = entry.string("sha256");
  auto allow = entry.strings("allow_types");
  if (path_text.empty()) {
    entry.error("path", "a plugin needs a path");
    return;
  }
  for (auto& c : sha)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!is_sha256_hex(sha)) {
    entry.error("sha256", "plugin \"" + path_text + "\": sha256 must be 64 hex digits");
    return;
  }
  if (allow.empty()) {
    entry.error(
        "allow_types",
        "plugin \"" + path_text + "\": allow_types must name the middleware types it may register");
    return;
  }
  PluginRequest request{absolute_path(path_text, config.source), sha, allow};

  std::lock_guard lock(loaded.mutex);
  auto it = loaded.by_path.find(request.path);
  if (it != loaded.by_path.end()) {
    const auto& lib = *it->second;
    if (lib.sha256 != request.sha256) {
      entry.error("sha256", "plugin \"" + request.path + "\": another build (sha256 " + lib.sha256 +
                                ") is already loaded; restart sluice to change a plugin");
      return;
    }
    for (const auto& type : lib.types) {
      if (std::find(allow.begin(), allow.end(), type) == allow.end()) {
        entry.error("allow_types", "plugin \"" + request.path + "\": registers middleware type \"" +
                                       type + "\", which is not in its allow_types");
      }
    }
    return;
  }
  auto result = load_plugin(request, MiddlewareRegistry::global());
  if (!result.error.empty()) {
    const char* key = result.error.rfind("SHA-256", 0) == 0                   ? "sha256"
                      : result.error.find("allow_types") != std::string::npos ? "allow_types"
                                                                              : "path";
    entry.error(key, "plugin \"" + request.path + "\" refused: " + result.error);
    return;
  }
  loaded.by_path.emplace(request.path, std::move(result.library));
}

const extension::ConfigSectionRegistrar section("plugins", [](Settings& s, ConfigBuild& config,
                                                              GatewayServices& services) {
  auto& loaded = services.shared.get_or_emplace<LoadedPlugins>();
  for (auto& entry : s.items())
    load_entry(entry, config, loaded);
});

}  // namespace
}  // namespace sluice::plugins
