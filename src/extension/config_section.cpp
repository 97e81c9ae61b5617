#include "sluice/extension/config_section.hpp"

#include <mutex>

namespace sluice::extension {
namespace {

struct Sections {
  std::mutex mutex;
  std::vector<std::pair<std::string, ConfigSection>> list;
};
Sections& sections() {
  static Sections s;
  return s;
}

std::vector<MiddlewareDecorator>& decorators() {
  static std::vector<MiddlewareDecorator> d;
  return d;
}

}  // namespace

void register_config_section(std::string key, ConfigSection section) {
  std::lock_guard lock(sections().mutex);
  sections().list.emplace_back(std::move(key), std::move(section));
}

void for_each_config_section(
    const std::function<void(const std::string& key, const ConfigSection& section)>& visit) {
  std::lock_guard lock(sections().mutex);
  for (const auto& [key, section] : sections().list)
    visit(key, section);
}

void register_middleware_decorator(MiddlewareDecorator decorator) {
  decorators().push_back(std::move(decorator));
}

const std::vector<MiddlewareDecorator>& middleware_decorators() {
  return decorators();
}

}  // namespace sluice::extension
