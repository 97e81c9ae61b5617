#include <map>

#include "middleware/concurrency_limit/concurrency_limit_middleware.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

// Limiters shared by every concurrency_limit naming the same `group:` (e.g. a gateway-wide
// "global" limit), by group and sizes; kept for the process so reloads keep the holders.
struct ConcurrencyGroups {
  std::map<std::string, std::shared_ptr<resilience::ConcurrencyLimiter>> by_key;
};

std::shared_ptr<Middleware> build(const MiddlewareSpec& spec, Settings& s) {
  ConcurrencyLimitConfig c;
  if (!s.has("max_in_flight")) s.error("max_in_flight", "is required");
  c.max_in_flight = static_cast<uint32_t>(s.integer("max_in_flight", 1, 1, 1'000'000));
  c.max_queue = static_cast<size_t>(s.integer("max_queue", 0, 0, 1'000'000));
  c.max_wait = s.millis("max_wait_ms", c.max_wait);
  if (c.max_queue > 0 && c.max_wait.count() <= 0)
    s.error("max_wait_ms", "must be > 0 when max_queue is set");
  if (c.max_queue == 0 && s.has("max_wait_ms"))
    s.error("max_wait_ms", "has no effect without max_queue (nothing waits)");
  c.reject_status = static_cast<int>(s.integer("reject_status", 503, 400, 599));
  if (c.reject_status != 503 && c.reject_status != 429)
    s.error("reject_status", "must be 503 or 429");
  const std::string group = s.string("group");
  if (s.has("key")) {
    c.key = RequestKey::parse(s, "key", "route");
    c.keyed = !c.key.is_route_only();
    if (c.keyed && !group.empty()) s.error("group", "a group is one limiter: drop key or group");
  }
  c.max_keys = static_cast<size_t>(s.integer("max_keys", 10000, 1, 10'000'000));
  if (!c.keyed && s.has("max_keys"))
    s.error("max_keys", "has no effect without a per-client key (one limiter for the route)");
  prometheus::Registry* registry =
      spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  std::shared_ptr<resilience::ConcurrencyLimiter> shared;
  if (!group.empty() && spec.services != nullptr) {
    auto& groups = spec.services->shared.get_or_emplace<ConcurrencyGroups>();
    auto& slot = groups.by_key[group + "/" + std::to_string(c.max_in_flight) + "/" +
                               std::to_string(c.max_queue)];
    if (!slot)
      slot = std::make_shared<resilience::ConcurrencyLimiter>(c.max_in_flight, c.max_queue);
    shared = slot;
  } else if (!c.keyed) {
    shared = std::make_shared<resilience::ConcurrencyLimiter>(c.max_in_flight, c.max_queue);
  }
  auto metrics =
      concurrency_limit_stats(registry, spec.route, group.empty() ? spec.name : "group:" + group);
  return std::make_shared<ConcurrencyLimitMiddleware>(spec.name, std::move(c), std::move(shared),
                                                      metrics);
}

const MiddlewareRegistrar registrar("concurrency_limit", build);

}  // namespace
}  // namespace sluice::middleware
