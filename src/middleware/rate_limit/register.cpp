#include "middleware/rate_limit/rate_limit_middleware.hpp"
#include "middleware/rate_limit/rate_limit_stats.hpp"
#include "middleware/rate_limit/redis_backend.hpp"
#include "resilience/local_rate_limiter.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

void add_counters(GatewayServices* services, const std::string& route, const std::string& label,
                  LimitRule& rule) {
  const RateLimitDecisionStats d = rate_limit_decision_stats(services, route, label);
  rule.allowed = d.allowed;
  rule.denied = d.denied;
  rule.allowed_degraded = d.allowed_degraded;
  rule.denied_degraded = d.denied_degraded;
}

std::shared_ptr<Middleware> build(const MiddlewareSpec& spec, Settings& s) {
  prometheus::Registry* metrics = spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
  RateLimitConfig config;
  config.headers = s.boolean("headers", true);
  auto items = s.children("limits");
  if (items.empty())
    s.error("limits",
            "at least one limit is required, e.g. "
            "[{name: per_ip, key: client_ip, rate: 10, burst: 20}]");
  std::vector<std::string> names;
  for (std::size_t i = 0; i < items.size(); ++i) {
    Settings& item = items[i];
    LimitRule rule;
    rule.name = item.string("name", "limit" + std::to_string(i));
    if (std::find(names.begin(), names.end(), rule.name) != names.end())
      item.error("name", "duplicate limit name \"" + rule.name + "\"");
    names.push_back(rule.name);
    rule.key = RequestKey::parse(item, "key", "client_ip");
    if (!item.has("rate")) item.error("rate", "is required (tokens per second)");
    rule.limit.rate_per_second = item.number("rate", 1);
    rule.limit.burst = item.number("burst", std::max(1.0, rule.limit.rate_per_second));
    if (rule.limit.rate_per_second <= 0) item.error("rate", "must be greater than 0");
    if (rule.limit.burst < 1) item.error("burst", "must be at least 1");
    add_counters(spec.services, spec.route, spec.name + "/" + rule.name, rule);
    config.limits.push_back(std::move(rule));
  }
  const auto backend = s.choice("backend", {"local", "redis"}, "local");
  const auto max_keys = s.integer("max_keys", 100000, 1, 100'000'000);
  Settings redis = s.child("redis");
  if (backend == "redis") {
    if (s.has("max_keys"))
      s.error("max_keys", "only used with backend: local (Redis keeps the buckets, with a TTL)");
    if (s.has("worker_leases"))
      s.error("worker_leases", "only used with backend: local (redis: mode: leased)");
    config.fail_closed_status =
        static_cast<int>(redis.integer("fail_closed_status", 503, 400, 599));
    auto redis_config = read_redis_config(redis);
    if (!redis_config) return nullptr;
    auto b = make_redis_backend(*redis_config, metrics, spec.route, spec.name);
    return std::make_shared<RateLimitMiddleware>(spec.name, std::move(config), b.limiter,
                                                 b.sync_errors);
  }
  if (s.has("redis")) s.error("redis", "only used with backend: redis");
  // Opt-in: a lease lets a limit admit up to burst/10 more than the exact bucket in an interval
  // (resilience/token_lease.hpp); the default stays exact, as nginx's limit_req and Envoy's
  // local rate limit are. Without RateLimit-* headers no response shows a decision's `remaining`.
  const bool leases = s.boolean("worker_leases", false);
  if (leases && config.headers) {
    s.error("worker_leases",
            "needs headers: false (RateLimit-Remaining would show the figure of a lease's start)");
  }
  auto local = std::make_shared<resilience::LocalRateLimiter>(
      clock, static_cast<std::size_t>(max_keys), 16, leases);
  return std::make_shared<RateLimitMiddleware>(spec.name, std::move(config), std::move(local));
}

const MiddlewareRegistrar registrar("rate_limit", build);

}  // namespace
}  // namespace sluice::middleware
