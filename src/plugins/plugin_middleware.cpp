#include "plugins/plugin_middleware.hpp"

#include <stdexcept>

#include "plugins/c_api.hpp"

namespace sluice::plugins {

PluginMiddleware::~PluginMiddleware() {
  if (type_->destroy != nullptr) type_->destroy(instance_);
}

Decision PluginMiddleware::pre_handle(Exchange& ex) {
  const int r = type_->pre_handle(instance_, to_c(ex));
  if (r == SLUICE_NEXT) return Decision::next();
  if (r == SLUICE_RESPOND) return Decision::respond();
  throw std::runtime_error("plugin middleware \"" + name_ + "\" (" + type_->type_name +
                           ") failed in pre_handle (" + std::to_string(r) + ")");
}

void PluginMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) {
  if (type_->post_handle != nullptr) {
    type_->post_handle(instance_, to_c(ex), static_cast<std::uint64_t>(elapsed.count()));
  }
}

}  // namespace sluice::plugins
