#include "observe/metrics/metrics_observer.hpp"

namespace sluice::observe {

void MetricsObserver::on_request_start(Exchange&) {
  metrics_.in_flight().add(1);
}

void MetricsObserver::on_request_end(Exchange& ex) {
  metrics_.in_flight().add(-1);
  const auto now = ex.finished_at();
  const std::string_view route = ex.route() ? std::string_view(ex.route()->name) : "-";
  RouteSeries* r = metrics_.route(route);
  if (r == nullptr) return;
  r->record(HttpMetrics::method_index(ex.request().method()), ex.response().status(),
            now - ex.context().start_steady(), ex.bytes_in(), ex.bytes_out());
  const ChainSnapshot* chain = ex.chain();
  if (chain == nullptr) return;
  const auto& active = chain->active();
  for (std::size_t i = 0; i < active.size(); ++i) {
    const auto self = ex.middleware_time(i);
    // Zero: the middleware was not entered (an earlier one answered) — not a sample.
    if (self.count() <= 0) continue;
    if (MiddlewareSeries* m = r->middleware(active[i]->name())) {
      m->self_time.observe(static_cast<uint64_t>(self.count()));
      m->recent.record(now, self);
    }
  }
}

}  // namespace sluice::observe
