#include "sluice/extension/handler_kind.hpp"

#include <deque>
#include <mutex>

namespace sluice::extension {

namespace {
struct Kinds {
  std::mutex mutex;
  std::deque<std::pair<std::string, HandlerFactory>> list;  // deque: stable addresses
};
Kinds& kinds() {
  static Kinds k;
  return k;
}

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

}  // namespace sluice::extension
