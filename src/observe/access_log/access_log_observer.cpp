#include "observe/access_log/access_log_observer.hpp"

#include "observe/access_log/access_log_line.hpp"

namespace sluice::observe {

void AccessLogObserver::on_request_end(Exchange& ex) {
  const auto now = ex.finished_at();
  const auto latency = now - ex.context().start_steady();
  const std::string_view route = ex.route() ? std::string_view(ex.route()->name) : "-";
  LatencyBucket bucket = LatencyBucket::kP50;
  if (LatencyEstimator* est = latencies_.get_or_create(route)) {
    // Against the route's recent distribution before this request joins it.
    bucket = est->classify(now, latency);
    est->record(now, latency);
  }
  // The request thread only copies the fields; the writer thread escapes and formats them.
  thread_local ByteBuffer record;
  record.clear();
  append_access_log_record(record, access_log_fields(ex, latency, bucket));
  writer_->write_record(&format_access_log_record, record.view());
}

}  // namespace sluice::observe
