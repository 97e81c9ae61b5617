// ConnectionsCollector: the seed's `http_connections` gauge and per-listener connection counters,
// read from the listeners at scrape time (nothing is written per request).
//
//   registry.add_collectable(std::make_shared<ConnectionsCollector>([&] { return listeners(); }));
//   // http_connections{listener="public",address="127.0.0.1:8080"} 12
//   // sluice_worker_connections_accepted_total{listener="public",address="...",worker="1"} 40
#pragma once

#include <prometheus/collectable.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sluice::observe {

struct ListenerConnections {
  std::string listener;  // "public" or "admin"
  std::string address;   // host:port as bound
  std::uint64_t open = 0, accepted = 0, closed = 0, refused = 0;
  std::vector<std::uint64_t> accepted_by_worker;  // index: the worker
};

class ConnectionsCollector final : public prometheus::Collectable {
 public:
  using Source = std::function<std::vector<ListenerConnections>()>;
  explicit ConnectionsCollector(Source source) : source_(std::move(source)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  Source source_;
};

}  // namespace sluice::observe
