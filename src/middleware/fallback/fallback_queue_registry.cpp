// Where the config loader and the admin API find the process's QueueRegistry (fallback_queue.hpp).
#include <map>
#include <memory>
#include <mutex>

#include "middleware/fallback/fallback_queue.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

struct SharedQueues {
  std::shared_ptr<QueueRegistry> registry;
};

// By services instance (an embedder or a test may run several gateways in one process).
std::mutex index_mutex;
std::map<const GatewayServices*, std::weak_ptr<QueueRegistry>>& index() {
  static std::map<const GatewayServices*, std::weak_ptr<QueueRegistry>> m;
  return m;
}

}  // namespace

std::shared_ptr<QueueRegistry> shared_queue_registry(GatewayServices& services) {
  auto& slot = services.shared.get_or_emplace<SharedQueues>();
  if (!slot.registry) {
    slot.registry = std::make_shared<QueueRegistry>();
    std::lock_guard lock(index_mutex);
    index()[&services] = slot.registry;
  }
  return slot.registry;
}

std::shared_ptr<QueueRegistry> find_queue_registry(GatewayServices& services) {
  std::lock_guard lock(index_mutex);
  auto it = index().find(&services);
  return it != index().end() ? it->second.lock() : nullptr;
}

}  // namespace sluice::middleware
