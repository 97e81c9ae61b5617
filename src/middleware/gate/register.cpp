// `rollout:` and `guard:` on any middleware item: read here and applied by wrapping the built
// middleware in a GatedMiddleware (see gated_middleware.hpp).
#include "middleware/gate/gated_middleware.hpp"
#include "resilience/breaker_settings.hpp"
#include "sluice/extension/config_section.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

std::unique_ptr<Rollout> read_rollout(const Settings& r) {
  RolloutRule rule;
  const std::string by = r.string("by", "request_id");
  if (by == "request_id") {
    rule.by = RolloutRule::By::kRequestId;
  } else if (by == "client_ip") {
    rule.by = RolloutRule::By::kClientIp;
  } else if (by == "user") {
    rule.by = RolloutRule::By::kUser;
  } else if (by.starts_with("header:") && by.size() > 7) {
    rule.by = RolloutRule::By::kHeader;
    rule.by_header = by.substr(7);
  } else {
    r.error("by", "expected request_id, client_ip, user or \"header:<Name>\", got \"" + by + "\"");
  }
  rule.seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0));
  if (r.has("match")) {
    Settings m = r.child("match");
    rule.match_header = m.string("header");
    rule.match_value = m.string("value");
    if (rule.match_header.empty()) m.error("header", "is required");
  }
  if (!r.has("percent") && rule.match_header.empty())
    r.error("", "give a percent, a match, or both");
  // With only a header match, no other request is in.
  const double percent = r.number("percent", rule.match_header.empty() ? 100 : 0, 0, 100);
  return std::make_unique<Rollout>(std::move(rule), percent);
}

std::unique_ptr<Guard> read_guard(const Settings& g) {
  auto guard = std::make_unique<Guard>();
  guard->skip_when_open = g.choice("on_open", {"skip", "answer"}, "skip") == "skip";
  Settings b = g.child("breaker");
  if (!g.has("breaker")) g.error("breaker", "is required");
  if (b.string("strategy") == "slow_request_ratio") {
    // A waiting middleware's own time is not seen by its wrapper: only errors are counted.
    b.error("strategy", "a guard counts its middleware's failures: use error_ratio or error_count");
  }
  auto config = resilience::read_breaker_settings(b);
  if (!config) return nullptr;
  guard->breaker = *config;
  return guard;
}

std::shared_ptr<Middleware> gate(std::shared_ptr<Middleware> inner, const Settings& item,
                                 const MiddlewareSpec& spec) {
  if (!item.has("rollout") && !item.has("guard")) return inner;
  std::unique_ptr<Rollout> rollout;
  std::unique_ptr<Guard> guard;
  if (item.has("rollout")) rollout = read_rollout(item.child("rollout"));
  if (item.has("guard")) {
    guard = read_guard(item.child("guard"));
    if (!guard) return inner;  // the error is reported; the load fails
  }
  const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
  prometheus::Registry* metrics = spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  GateStats stats = gate_stats(metrics, spec.route, std::string(inner->name()));
  return std::make_shared<GatedMiddleware>(std::move(inner), spec.route, std::move(rollout),
                                           std::move(guard), stats, clock);
}

const extension::MiddlewareDecoratorRegistrar registrar(gate);

}  // namespace
}  // namespace sluice::middleware
