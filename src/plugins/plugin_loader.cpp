#include "plugins/plugin_loader.hpp"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "plugins/c_api.hpp"
#include "plugins/plugin_middleware.hpp"

#include <spdlog/spdlog.h>

namespace sluice::plugins {

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

namespace {

// What sluice_plugin_register sees through host_data.
struct Registration {
  const PluginRequest* request;
  MiddlewareRegistry* registry;
  std::vector<const sluice_middleware_type*> types;
  std::string error;
};

int register_middleware(void* host_data, const sluice_middleware_type* type) {
  auto& reg = *static_cast<Registration*>(host_data);
  if (!reg.error.empty()) return 1;
  if (type == nullptr || type->type_name == nullptr || type->create == nullptr ||
      type->pre_handle == nullptr) {
    reg.error =
        "registered an incomplete middleware type (type_name, create and pre_handle "
        "are required)";
    return 1;
  }
  const std::string name = type->type_name;
  const auto& allowed = reg.request->allow_types;
  if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
    reg.error = "registers middleware type \"" + name + "\", which is not in its allow_types";
    return 1;
  }
  const bool twice = std::any_of(reg.types.begin(), reg.types.end(),
                                 [&](auto* t) { return name == t->type_name; });
  if (twice || reg.registry->find(name) != nullptr) {
    reg.error = "registers middleware type \"" + name + "\", which already exists";
    return 1;
  }
  reg.types.push_back(type);
  return 0;
}

void plugin_log(void* host_data, int level, const char* message) {
  auto& reg = *static_cast<Registration*>(host_data);
  const auto lvl = level >= SLUICE_LOG_WARN   ? spdlog::level::warn
                   : level == SLUICE_LOG_INFO ? spdlog::level::info
                                              : spdlog::level::debug;
  spdlog::log(lvl, "plugin {}: {}", reg.request->path, message == nullptr ? "" : message);
}

MiddlewareFactory factory_for(const sluice_middleware_type* type,
                              std::shared_ptr<const PluginLibrary> library) {
  return [type, library](const MiddlewareSpec& spec,
                         Settings& settings) -> std::shared_ptr<Middleware> {
    ConfigView view{&settings, {}, 0};
    void* instance = type->create(spec.name.c_str(), to_c(view));
    if (instance == nullptr) {
      if (view.errors == 0) {
        settings.error("", std::string("plugin middleware type \"") + type->type_name +
                               "\" refused to create an instance");
      }
      return nullptr;
    }
    return std::make_shared<PluginMiddleware>(spec.name, type, instance, library);
  };
}

// The file's bytes go into an anonymous memory file and are mapped from there, so what runs is
// exactly what was hashed (no window to swap the file between the check and dlopen).
void* map_checked(const std::string& bytes, std::string& error) {
  const int fd = memfd_create("sluice-plugin", MFD_CLOEXEC);
  if (fd < 0) {
    error = "memfd_create failed";
    return nullptr;
  }
  std::size_t written = 0;
  while (written < bytes.size()) {
    const auto n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n <= 0) {
      ::close(fd);
      error = "cannot copy the plugin into memory";
      return nullptr;
    }
    written += static_cast<std::size_t>(n);
  }
  const std::string proc_path = "/proc/self/fd/" + std::to_string(fd);
  void* handle = ::dlopen(proc_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ::close(fd);
  if (handle == nullptr) {
    const char* e = ::dlerror();
    error = std::string("dlopen failed: ") + (e ? e : "unknown error");
  }
  return handle;
}

}  // namespace

PluginLoadResult load_plugin(const PluginRequest& request, MiddlewareRegistry& registry) {
  std::ifstream in(request.path, std::ios::binary);
  if (!in) return {nullptr, "cannot read the file"};
  std::ostringstream content;
  content << in.rdbuf();
  const std::string bytes = std::move(content).str();

  const std::string actual = sha256_hex(bytes);
  if (actual != request.sha256) {
    return {nullptr, "SHA-256 mismatch: expected " + request.sha256 + ", the file has " + actual};
  }

  std::string error;
  void* handle = map_checked(bytes, error);
  if (handle == nullptr) return {nullptr, error};
  auto fail = [&](std::string why) {
    ::dlclose(handle);  // nothing of it was registered: unloading is safe here
    return PluginLoadResult{nullptr, std::move(why)};
  };

  auto abi =
      reinterpret_cast<sluice_plugin_abi_version_fn>(::dlsym(handle, SLUICE_PLUGIN_ABI_SYMBOL));
  auto entry =
      reinterpret_cast<sluice_plugin_register_fn>(::dlsym(handle, SLUICE_PLUGIN_REGISTER_SYMBOL));
  if (abi == nullptr || entry == nullptr) {
    return fail("not a sluice plugin (it must export " SLUICE_PLUGIN_ABI_SYMBOL
                " and " SLUICE_PLUGIN_REGISTER_SYMBOL ")");
  }
  const std::uint32_t version = abi();
  if (version != SLUICE_PLUGIN_ABI_VERSION) {
    return fail("unsupported plugin ABI version " + std::to_string(version) +
                " (this sluice speaks " + std::to_string(SLUICE_PLUGIN_ABI_VERSION) + ")");
  }

  Registration reg{&request, &registry, {}, {}};
  const sluice_plugin_host host{SLUICE_PLUGIN_ABI_VERSION, &reg,
                                &exchange_api(),           &config_api(),
                                &register_middleware,      &plugin_log};
  const int rc = entry(&host);
  if (!reg.error.empty()) return fail(reg.error);
  if (rc != 0) return fail("sluice_plugin_register failed (" + std::to_string(rc) + ")");

  auto library = std::make_shared<PluginLibrary>();
  library->path = request.path;
  library->sha256 = actual;
  library->handle = handle;
  for (const auto* type : reg.types)
    library->types.emplace_back(type->type_name);
  for (const auto* type : reg.types) {
    auto e = registry.add(type->type_name, factory_for(type, library));
    if (!e.empty()) return {nullptr, e};  // a race with another registration; keep it mapped
  }
  return {library, {}};
}

}  // namespace sluice::plugins
