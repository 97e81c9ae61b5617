#include "observe/access_log/access_log_observer.hpp"

#include "observe/access_log/access_log_line.hpp"

#include <cstring>

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

void AccessLogObserver::on_replay(const ReplayRecord& rec) {
  AccessLogFields f;
  f.start_unix_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(rec.start.time_since_epoch()).count();
  f.latency_ns = rec.latency.count();
  f.upstream_latency_ns = rec.latency.count();
  f.status = rec.status;
  if (rec.trace_id.is_valid()) {
    f.has_trace = true;
    std::memcpy(f.trace_id, rec.trace_id.b, 16);
    std::memcpy(f.span_id, rec.span_id.b, 8);
  }
  const std::string answered_by = "queue:" + rec.queue;
  std::string detail = "replay:" + rec.id + ";attempt=" + std::to_string(rec.attempt);
  if (!rec.error.empty()) detail += ",error:" + rec.error;
  f.request_id = rec.request_id;
  f.method = rec.method;
  f.path = std::string_view(rec.target).substr(0, rec.target.find('?'));
  f.upstream = rec.upstream;
  f.answered_by = answered_by;
  f.detail = detail;
  thread_local ByteBuffer record;
  record.clear();
  append_access_log_record(record, f);
  writer_->write_record(&format_access_log_record, record.view());
}

}  // namespace sluice::observe
