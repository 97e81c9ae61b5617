#include "middleware/timeout/timeout.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {
const MiddlewareRegistrar registrar(
    "timeout", [](const MiddlewareSpec& spec, Settings& s) -> std::shared_ptr<Middleware> {
      auto timeout = s.millis("timeout_ms", std::chrono::milliseconds(0));
      if (timeout.count() <= 0) {
        s.error("timeout_ms", "must be greater than 0 (e.g. 2000)");
        return nullptr;
      }
      const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
      return std::make_shared<TimeoutMiddleware>(spec.name, timeout, clock);
    });
}  // namespace
}  // namespace sluice::middleware
