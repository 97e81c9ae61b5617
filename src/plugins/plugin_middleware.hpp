// PluginMiddleware — a middleware whose hooks are C functions of a loaded plugin. It keeps its
// plugin library alive (libraries are never unloaded; see plugin_loader.hpp).
//
//   auto mw = std::make_shared<PluginMiddleware>("hello", type, instance, library);
//   chain.use(mw);
#pragma once

#include <memory>
#include <string>

#include "sluice/middleware.hpp"
#include "sluice/plugin_abi.h"

namespace sluice::plugins {

struct PluginLibrary;

class PluginMiddleware final : public Middleware {
 public:
  PluginMiddleware(std::string name, const sluice_middleware_type* type, void* instance,
                   std::shared_ptr<const PluginLibrary> library)
      : name_(std::move(name)), type_(type), instance_(instance), library_(std::move(library)) {}
  ~PluginMiddleware() override;
  PluginMiddleware(const PluginMiddleware&) = delete;
  PluginMiddleware& operator=(const PluginMiddleware&) = delete;

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return type_->type_name; }
  // SLUICE_FAIL (or any unknown value) becomes an exception: recover() and the 500 apply.
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;

 private:
  std::string name_;
  const sluice_middleware_type* type_;
  void* instance_;
  std::shared_ptr<const PluginLibrary> library_;
};

}  // namespace sluice::plugins
