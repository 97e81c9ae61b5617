// AccessLogObserver: one JSON line per finished request (early answers and exceptions too),
// handed to an AccessLogWriter that never blocks the worker. latency_bucket compares the
// request's latency with the recent p50/p95/p99 of its route (see docs/OBSERVABILITY.md).
//
//   auto obs = std::make_shared<AccessLogObserver>(writer, RouteLatencies::of(services));
//   config.observers.push_back(obs);
#pragma once

#include <memory>

#include "observe/access_log/access_log_writer.hpp"
#include "observe/latency_estimator.hpp"
#include "observe/metrics/intern_map.hpp"
#include "observe/replay_record.hpp"
#include "sluice/exchange.hpp"

namespace sluice::observe {

// Recent latency of each route, by route name; shared by every config (a reload keeps them).
using RouteLatencies = InternMap<LatencyEstimator>;

class AccessLogObserver final : public Observer, public ReplayRecorder {
 public:
  AccessLogObserver(std::shared_ptr<AccessLogWriter> writer, RouteLatencies& latencies)
      : writer_(std::move(writer)), latencies_(latencies) {}
  void on_request_end(Exchange& ex) override;
  // A line of its own per replay: answered_by "queue:<name>", detail "replay:<id>;attempt=<n>".
  void on_replay(const ReplayRecord& record) override;

 private:
  const std::shared_ptr<AccessLogWriter> writer_;
  RouteLatencies& latencies_;  // process-wide, outlives every observer
};

}  // namespace sluice::observe
