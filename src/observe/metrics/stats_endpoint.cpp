// GET /stats/middlewares on the admin listener: which middleware costs the most, per route,
// over the recent window (10-20 s) of each (route, middleware) LatencyEstimator.
//
//   curl 127.0.0.1:9901/stats/middlewares
//   {"window_seconds":"10-20","middlewares":[{"route":"api","middleware":"auth","count":912,
//     "p50_us":41.5,"p99_us":180.2,"cost_ms":37.8}, ...]}          // cost_ms = count * p50
#include <algorithm>
#include <nlohmann/json.hpp>

#include "observe/metrics/metrics_section.hpp"
#include "sluice/extension/admin_endpoint.hpp"
#include "sluice/extension/json_answer.hpp"

namespace sluice::observe {
namespace {

struct Row {
  std::string route;
  std::string middleware;
  uint64_t count = 0;
  double p50_us = 0;
  double p99_us = 0;
  double cost_ms = 0;
};

bool stats_middlewares(Exchange& ex, extension::AdminView& gw) {
  if (ex.request().path() != "/stats/middlewares") return false;
  if (ex.request().method() != "GET" && ex.request().method() != "HEAD") {
    ex.answer_error(405, "method_not_allowed", "GET only");
    return true;
  }
  const auto config = gw.config();
  const auto* handle = config->extras->get<MetricsHandle>();
  std::vector<Row> rows;
  const auto now = std::chrono::steady_clock::now();
  // The current routes and chains: idle middlewares appear with count 0, and series of routes
  // that a reload removed do not appear at all.
  for (const auto& route : gw.routes()) {
    const RouteSeries* series = handle ? handle->http->find_route(route.name) : nullptr;
    const auto snapshot = route.chain->current();  // held: an edit may publish a new one meanwhile
    for (const Middleware* m : snapshot->active()) {
      Row row{route.name, std::string(m->name())};
      if (const MiddlewareSeries* s = series ? series->find_middleware(m->name()) : nullptr) {
        const auto snap = s->recent.snapshot(now);
        row.count = snap.count;
        row.p50_us = static_cast<double>(snap.p50.count()) / 1e3;
        row.p99_us = static_cast<double>(snap.p99.count()) / 1e3;
        row.cost_ms = static_cast<double>(snap.count) * row.p50_us / 1e3;
      }
      rows.push_back(std::move(row));
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.cost_ms != b.cost_ms ? a.cost_ms > b.cost_ms : a.p99_us > b.p99_us;
  });
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : rows) {
    list.push_back({{"route", r.route},
                    {"middleware", r.middleware},
                    {"count", r.count},
                    {"p50_us", r.p50_us},
                    {"p99_us", r.p99_us},
                    {"cost_ms", r.cost_ms}});
  }
  nlohmann::json body = {
      {"window_seconds", "10-20"}, {"metrics_enabled", handle != nullptr}, {"middlewares", list}};
  extension::answer_json(ex, 200, body);
  return true;
}

// Memory only (no descriptor of the workers): served on the admin thread itself.
const extension::AdminEndpointRegistrar endpoint({"/stats/middlewares", stats_middlewares,
                                                  extension::AdminEndpoint::Thread::kAdminThread});

}  // namespace
}  // namespace sluice::observe
