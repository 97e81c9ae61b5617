// MetricsObserver: records every request that runs through a route's chain into HttpMetrics —
// early answers and exceptions included, since observers see every outcome.
//
//   auto obs = std::make_shared<MetricsObserver>(http_metrics);
//   config.observers.push_back(obs);   // on every route's chain
#pragma once

#include "observe/metrics/http_metrics.hpp"
#include "sluice/exchange.hpp"

namespace sluice::observe {

class MetricsObserver final : public Observer {
 public:
  explicit MetricsObserver(HttpMetrics& metrics) : metrics_(metrics) {}
  void on_request_start(Exchange& ex) override;
  void on_request_end(Exchange& ex) override;
  bool wants_middleware_times() const override { return true; }

 private:
  HttpMetrics& metrics_;  // process-wide (GatewayServices::shared), outlives every observer
};

}  // namespace sluice::observe
