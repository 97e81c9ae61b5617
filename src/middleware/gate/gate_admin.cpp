// Admin API of gated middlewares (items with `rollout:` or `guard:`):
//   GET  /rollouts                                  every gated item: percent, rule, guard state
//   POST /rollouts/{route}/{middleware}?percent=N   a new percentage at once, no reload; kept by
//                                                   reloads that leave the item unchanged
#include <charconv>
#include <nlohmann/json.hpp>

#include "middleware/gate/gated_middleware.hpp"
#include "sluice/extension/admin_endpoint.hpp"
#include "sluice/extension/json_answer.hpp"

namespace sluice::middleware {
namespace {

using json = nlohmann::json;

json describe(const std::string& route, GatedMiddleware& g) {
  json out = {{"route", route}, {"middleware", std::string(g.name())}};
  if (auto* r = g.rollout()) {
    const auto& rule = r->rule();
    static constexpr const char* kBy[] = {"request_id", "client_ip", "user", "header"};
    out["rollout"] = {{"percent", r->percent()},
                      {"by", std::string(kBy[static_cast<int>(rule.by)]) +
                                 (rule.by_header.empty() ? "" : ":" + rule.by_header)},
                      {"seed", rule.seed},
                      {"match_header", rule.match_header},
                      {"match_value", rule.match_value}};
  }
  if (auto* b = g.breaker()) {
    const auto s = b->snapshot();
    out["guard"] = {{"state", resilience::to_string(s.state)},
                    {"errors", s.window.errors},
                    {"total", s.window.total},
                    {"rejected", s.rejected}};
  }
  return out;
}

std::optional<double> percent_of(std::string_view query) {
  constexpr std::string_view kKey = "percent=";
  for (std::size_t at = 0; at < query.size();) {
    auto amp = query.find('&', at);
    auto part = query.substr(at, amp == std::string_view::npos ? std::string_view::npos : amp - at);
    if (part.starts_with(kKey)) {
      part.remove_prefix(kKey.size());
      double v = 0;
      auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
      if (ec != std::errc{} || end != part.data() + part.size() || v < 0 || v > 100)
        return std::nullopt;
      return v;
    }
    if (amp == std::string_view::npos) break;
    at = amp + 1;
  }
  return std::nullopt;
}

bool handle(Exchange& ex, extension::AdminView& gw) {
  const std::string_view path = ex.request().path();
  if (path != "/rollouts" && !path.starts_with("/rollouts/")) return false;
  const auto routes = gw.routes();
  const bool get = ex.request().method() == "GET" || ex.request().method() == "HEAD";
  if (path == "/rollouts" || path == "/rollouts/") {
    if (!get) {
      ex.answer_error(405, "method_not_allowed", "GET /rollouts lists the gated middlewares");
      return true;
    }
    json list = json::array();
    for (const auto& r : routes) {
      const auto snapshot = r.chain->current();  // held: an edit may publish a new one meanwhile
      for (const auto& e : snapshot->entries())
        if (auto* g = dynamic_cast<GatedMiddleware*>(e.middleware.get()))
          list.push_back(describe(r.name, *g));
    }
    extension::answer_json(ex, 200, {{"middlewares", list}});
    return true;
  }
  const std::string_view rest = path.substr(std::string_view("/rollouts/").size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || ex.request().method() != "POST") {
    ex.answer_error(405, "method_not_allowed", "use POST /rollouts/{route}/{middleware}?percent=N");
    return true;
  }
  const auto percent = percent_of(ex.request().query());
  if (!percent) {
    ex.answer_error(400, "bad_request", "percent=N (0..100) is required");
    return true;
  }
  const extension::RouteView* route = nullptr;
  for (const auto& r : routes)
    if (r.name == rest.substr(0, slash)) route = &r;
  const std::string_view name = rest.substr(slash + 1);
  if (route != nullptr) {
    const auto snapshot = route->chain->current();  // held, as above
    for (const auto& e : snapshot->entries()) {
      auto* g = dynamic_cast<GatedMiddleware*>(e.middleware.get());
      if (g == nullptr || g->name() != name || g->rollout() == nullptr) continue;
      g->rollout()->set_percent(*percent);
      extension::answer_json(ex, 200, describe(route->name, *g));
      return true;
    }
  }
  ex.answer_error(404, "not_found",
                  "no middleware with a rollout named \"" + std::string(name) + "\" on that route");
  return true;
}

// Memory only (no descriptor of the workers): served on the admin thread itself.
const extension::AdminEndpointRegistrar endpoint({"/rollouts", handle,
                                                  extension::AdminEndpoint::Thread::kAdminThread});

}  // namespace
}  // namespace sluice::middleware
