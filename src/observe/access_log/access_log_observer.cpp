#include "observe/access_log/access_log_observer.hpp"

#include "observe/access_log/access_log_line.hpp"

namespace sluice::observe {

void AccessLogObserver::on_request_end(Exchange& ex) {
  const auto now = std::chrono::steady_clock::now();
  const auto latency = now - ex.context().start_steady();
  const std::string_view route = ex.route() ? std::string_view(ex.route()->name) : "-";
  std::string_view bucket = "p50";
  if (LatencyEstimator* est = latencies_.get_or_create(route)) {
    // Against the route's recent distribution before this request joins it.
    bucket = to_string(est->classify(now, latency));
    est->record(now, latency);
  }
  writer_->write(format_access_log_line(ex, latency, bucket));
}

}  // namespace sluice::observe
