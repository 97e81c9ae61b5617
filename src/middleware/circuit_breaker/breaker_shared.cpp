#include "middleware/circuit_breaker/breaker_shared.hpp"

#include <map>
#include <mutex>

#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {
struct SharedBreakers {
  std::shared_ptr<BreakerRegistry> registry;
};
// The admin API runs on its own thread while a reload may add slots to services.shared, so it
// finds the registry here instead of reading the slots.
std::mutex index_mutex;
std::map<const GatewayServices*, std::weak_ptr<BreakerRegistry>>& index() {
  static std::map<const GatewayServices*, std::weak_ptr<BreakerRegistry>> m;
  return m;
}
}  // namespace

std::shared_ptr<BreakerRegistry> shared_breaker_registry(GatewayServices* services,
                                                         std::size_t max_breakers) {
  if (services == nullptr) return std::make_shared<BreakerRegistry>(nullptr, max_breakers);
  auto& slot = services->shared.get_or_emplace<SharedBreakers>();
  if (!slot.registry) {
    slot.registry = std::make_shared<BreakerRegistry>(services->metrics.get(), max_breakers);
    std::lock_guard lock(index_mutex);
    index()[services] = slot.registry;
  }
  return slot.registry;
}

std::shared_ptr<BreakerRegistry> find_breaker_registry(GatewayServices& services) {
  std::lock_guard lock(index_mutex);
  auto it = index().find(&services);
  return it != index().end() ? it->second.lock() : nullptr;
}

}  // namespace sluice::middleware
