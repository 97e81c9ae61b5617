#include "gateway/handlers/handler_registry.hpp"

#include <deque>
#include <mutex>

#include "gateway/handlers/respond_handler.hpp"

namespace sluice::gateway {

namespace {
struct Kinds {
  std::mutex mutex;
  std::deque<std::pair<std::string, HandlerFactory>> list;  // deque: stable addresses
};
Kinds& kinds() {
  static Kinds k;
  return k;
}

const HandlerRegistrar respond_kind("respond", [](Settings& s, GatewayServices&) {
  auto status = static_cast<int>(s.integer("status", 200, 100, 599));
  return std::make_shared<RespondHandler>(status, s.string_map("headers"), s.string("body"));
});

const HandlerRegistrar echo_kind("echo", [](Settings&, GatewayServices&) {
  return std::make_shared<EchoHandler>();
});
}  // namespace

void register_handler_kind(std::string kind, HandlerFactory factory) {
  std::lock_guard lock(kinds().mutex);
  kinds().list.emplace_back(std::move(kind), std::move(factory));
}

const HandlerFactory* find_handler_kind(std::string_view kind) {
  std::lock_guard lock(kinds().mutex);
  for (auto& [name, f] : kinds().list)
    if (name == kind) return &f;
  return nullptr;
}

std::vector<std::string> handler_kinds() {
  std::lock_guard lock(kinds().mutex);
  std::vector<std::string> out;
  for (auto& [name, f] : kinds().list)
    out.push_back(name);
  return out;
}

}  // namespace sluice::gateway
