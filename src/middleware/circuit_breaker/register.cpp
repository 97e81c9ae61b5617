#include <prometheus/registry.h>

#include "middleware/circuit_breaker/breaker_shared.hpp"
#include "middleware/circuit_breaker/circuit_breaker_middleware.hpp"
#include "resilience/breaker_settings.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

ErrorPolicy read_errors(const Settings& e) {
  ErrorPolicy p;
  p.status_5xx = e.boolean("status_5xx", true);
  for (auto status : e.integers("statuses")) {
    if (status < 100 || status > 599)
      e.error("statuses", "must be HTTP statuses (100..599)");
    else
      p.statuses.push_back(static_cast<int>(status));
  }
  p.upstream_connect_failure = e.boolean("upstream_connect_failure", true);
  p.timeout = e.boolean("timeout", true);
  p.exception = e.boolean("exception", true);
  return p;
}

BreakerKey read_key(const Settings& s) {
  BreakerKey k;
  const std::string text = s.string("key", "route");
  if (text == "route") return k;
  if (text.starts_with("upstream:") && text.size() > 9) {
    k.kind = BreakerKey::Kind::kUpstream;
    k.value = text.substr(9);
  } else if (text.starts_with("header:") && text.size() > 7) {
    k.kind = BreakerKey::Kind::kHeader;
    k.value = text.substr(7);
  } else {
    s.error("key", "unknown key \"" + text +
                       "\"; expected route, \"upstream:<cluster>\" or \"header:<Name>\"");
  }
  return k;
}

std::shared_ptr<Middleware> build(const MiddlewareSpec& spec, Settings& s) {
  CircuitBreakerMiddlewareConfig c;
  auto breaker = resilience::read_breaker_settings(s);
  c.errors = read_errors(s.child("error_on"));
  c.key = read_key(s);
  const auto max_breakers = s.integer("max_breakers", 10000, 1, 10'000'000);
  // Other settings errors leave valid fallback values: the middleware is still built (the load
  // fails anyway), so an error elsewhere in the file does not add a vague "could not be built".
  if (!breaker) return nullptr;
  c.breaker = *breaker;
  c.identity = s.canonical();
  auto registry = shared_breaker_registry(spec.services, static_cast<std::size_t>(max_breakers));
  const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
  return std::make_shared<CircuitBreakerMiddleware>(spec.name, spec.route, std::move(c),
                                                    std::move(registry), clock);
}

const MiddlewareRegistrar registrar("circuit_breaker", build);

}  // namespace
}  // namespace sluice::middleware
