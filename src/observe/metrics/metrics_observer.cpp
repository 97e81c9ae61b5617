#include "observe/metrics/metrics_observer.hpp"

#include "core/http_message.hpp"

#include <array>
#include <string>
#include <vector>

namespace sluice::observe {

namespace {
// The series of one (route, chain snapshot) pair, kept per thread: finding them by name costs a
// hash and a probe per middleware per request (≈ 600 instructions for five, callgrind), while a
// snapshot's middlewares never change. The key is the snapshot's process-unique id, the metrics
// instance and the route name (a chain could in principle be served under two names).
struct SeriesCache {
  const HttpMetrics* metrics = nullptr;
  std::uint64_t chain_id = 0;
  std::string route;
  RouteSeries* series = nullptr;
  std::vector<MiddlewareSeries*> middlewares;
};

// A miss: the first request of this (route, snapshot) on this thread. Out of line, so the hit
// below inlines into the request end (a call's frame setup was ≈ 20 instructions a request).
[[gnu::noinline]] SeriesCache& fill_series(SeriesCache& c, HttpMetrics& metrics,
                                           const ChainSnapshot& chain, std::string_view route) {
  c.metrics = &metrics;
  c.chain_id = chain.id();
  c.route.assign(route);
  c.series = metrics.route(route);
  c.middlewares.clear();
  if (c.series != nullptr) {
    for (const Middleware* m : chain.active())
      c.middlewares.push_back(c.series->middleware(m->name()));
  }
  return c;
}

inline SeriesCache& cached_series(HttpMetrics& metrics, const ChainSnapshot& chain,
                                  std::string_view route) {
  thread_local std::array<SeriesCache, 8> caches;
  SeriesCache& c = caches[chain.id() & (caches.size() - 1)];
  if (c.chain_id == chain.id() && c.metrics == &metrics && c.route == route) [[likely]]
    return c;
  return fill_series(c, metrics, chain, route);
}
}  // namespace

void MetricsObserver::on_request_start(Exchange&) {
  metrics_.in_flight().add(1);
}

namespace {
// The method's label index from Beast's parsed verb (core/http_message.hpp): cheaper than from
// its text (Request::method), with the same result for every method.
std::size_t method_of(const Exchange& ex) {
  return HttpMetrics::method_index(ex.request().native().method());
}

// The request end's samples, compiled once for a sole writer and once for the shared shard.
template <bool Sole>
void record_end(HttpMetrics& metrics, Exchange& ex, ShardWriter<Sole> shard) {
  metrics.in_flight().add_at(shard, -1);
  const auto now = ex.finished_at();
  const std::string_view route = ex.route() ? std::string_view(ex.route()->name) : "-";
  const ChainSnapshot* chain = ex.chain();
  if (chain == nullptr) {
    if (RouteSeries* r = metrics.route(route)) {
      r->record_at(shard, method_of(ex), ex.response().status(), now - ex.context().start_steady(),
                   ex.bytes_in(), ex.bytes_out());
    }
    return;
  }
  const SeriesCache& c = cached_series(metrics, *chain, route);
  if (c.series == nullptr) return;
  c.series->record_at(shard, method_of(ex), ex.response().status(),
                      now - ex.context().start_steady(), ex.bytes_in(), ex.bytes_out());
  const int64_t window = LatencyEstimator::window_of(now, MiddlewareSeries::kRecentWindow);
  for (std::size_t i = 0; i < c.middlewares.size(); ++i) {
    const auto self = ex.middleware_time(i);
    // Zero: the middleware was not entered (an earlier one answered) — not a sample.
    if (self.count() <= 0) continue;
    if (MiddlewareSeries* m = c.middlewares[i]) {
      m->self_time.observe_at(shard, static_cast<uint64_t>(self.count()));
      m->recent.record_in_window(shard, window, self);
    }
  }
}
}  // namespace

void MetricsObserver::on_request_end(Exchange& ex) {
  // The thread's shard and its kind, once for the ~22 samples below.
  with_shard_writer([&](auto shard) { record_end(metrics_, ex, shard); });
}

}  // namespace sluice::observe
