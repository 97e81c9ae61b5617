// Admin API of the circuit breakers:
//   GET  /breakers                               every breaker: state, window figures, config
//   POST /breakers/{name}/force_open|force_closed|reset
// A name is "<middleware>:<resource>" (e.g. "cb:orders"), percent-encoded in the path.
#include <nlohmann/json.hpp>

#include "core/http_text.hpp"
#include "middleware/circuit_breaker/breaker_shared.hpp"
#include "sluice/extension/admin_endpoint.hpp"
#include "sluice/extension/json_answer.hpp"

namespace sluice::middleware {
namespace {

using json = nlohmann::json;

double millis(Nanos d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

json describe(const resilience::CircuitBreaker& b, SteadyTime now) {
  const auto s = b.snapshot();
  const auto& c = b.config();
  return {{"name", s.name},
          {"state", resilience::to_string(s.state)},
          {"forced", s.forced},
          {"epoch", s.epoch},
          {"probes_in_flight", s.probes_in_flight},
          {"retry_after_ms", millis(b.retry_after(now))},
          {"rejected", s.rejected},
          {"admitted_share", s.admitted_share},
          {"window",
           {{"total", s.window.total},
            {"errors", s.window.errors},
            {"slow", s.window.slow},
            {"error_ratio", s.window.error_ratio()},
            {"slow_ratio", s.window.slow_ratio()},
            {"average_rt_ms", millis(s.window.average_rt())}}},
          {"config",
           {{"strategy", resilience::to_string(c.strategy)},
            {"threshold", c.threshold},
            {"retry_timeout_ms", c.retry_timeout.count()},
            {"min_request_amount", c.min_request_amount},
            {"stat_interval_ms", c.stat_interval.count()},
            {"stat_sliding_window_bucket_count", c.stat_sliding_window_bucket_count},
            {"max_allowed_rt_ms", c.max_allowed_rt.count()},
            {"half_open_max_probes", c.half_open_max_probes},
            {"half_open_success_probes", c.half_open_success_probes},
            {"ramp_ms", c.ramp.count()},
            {"ramp_start_percent", c.ramp_start_percent},
            {"ramp_min_request_amount", c.ramp_min_request_amount}}}};
}

bool handle(Exchange& ex, extension::AdminView& gw) {
  const std::string_view path = ex.request().path();
  if (path != "/breakers" && !path.starts_with("/breakers/")) return false;
  auto registry = find_breaker_registry(gw.services());
  const SteadyTime now = gw.services().clock->now();
  const bool get = ex.request().method() == "GET" || ex.request().method() == "HEAD";
  if (path == "/breakers" || path == "/breakers/") {
    if (!get) {
      ex.answer_error(405, "method_not_allowed", "GET /breakers lists the breakers");
      return true;
    }
    json list = json::array();
    if (registry)
      for (const auto& b : registry->all())
        list.push_back(describe(b->breaker, now));
    extension::answer_json(ex, 200, {{"breakers", list}});
    return true;
  }
  const std::string_view rest = path.substr(std::string_view("/breakers/").size());
  const auto slash = rest.rfind('/');
  if (slash == std::string_view::npos || ex.request().method() != "POST") {
    ex.answer_error(405, "method_not_allowed",
                    "use POST /breakers/{name}/force_open|force_closed|reset");
    return true;
  }
  const auto decoded = detail::percent_decode(rest.substr(0, slash));
  const std::string name = decoded.value_or(std::string(rest.substr(0, slash)));
  const std::string_view action = rest.substr(slash + 1);
  if (action != "force_open" && action != "force_closed" && action != "reset") {
    ex.answer_error(404, "not_found", "expected force_open, force_closed or reset");
    return true;
  }
  auto found = registry ? registry->find(name) : std::vector<std::shared_ptr<ManagedBreaker>>{};
  if (found.empty()) {
    ex.answer_error(404, "not_found", "no circuit breaker named \"" + name + "\"");
    return true;
  }
  json list = json::array();
  for (const auto& b : found) {
    if (action == "force_open")
      b->breaker.force_open();
    else if (action == "force_closed")
      b->breaker.force_closed();
    else
      b->breaker.reset();
    list.push_back(describe(b->breaker, now));
  }
  extension::answer_json(ex, 200, {{"action", action}, {"breakers", list}});
  return true;
}

// Memory only (no descriptor of the workers): served on the admin thread itself.
const extension::AdminEndpointRegistrar endpoint({"/breakers", handle,
                                                  extension::AdminEndpoint::Thread::kAdminThread});

}  // namespace
}  // namespace sluice::middleware
