// OtlpExporter: sends finished spans to an OpenTelemetry collector with OTLP/HTTP, JSON encoding
// (POST <endpoint>/v1/traces), from a background thread with a bounded queue, batching by size
// and time, and retries with exponential backoff.
//
//   OtlpExporter exporter(from_env({.service_name = "sluice"}));
//   exporter.enqueue(std::move(span));   // on the request path: never blocks, drops when full
//   exporter.enqueue_records(buf, 1);    // the same, from SpanRecordWriter records (no allocation)
//   exporter.shutdown();                 // at exit: exports what is queued, bounded in time
//
// The queue is one byte buffer of span records (observe/span_record.hpp): a request thread
// appends under a short lock; the export thread swaps the whole buffer out and encodes JSON
// outside the lock, into a body buffer it reuses, with the resource/scope part precomputed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "observe/byte_buffer.hpp"
#include "observe/tracing/span.hpp"

namespace httplib {
class Client;
}

namespace sluice::observe {

struct OtlpConfig {
  // Base URL; "/v1/traces" is appended. Ignored when traces_endpoint is set.
  std::string endpoint = "http://localhost:4318";
  // Full URL of the traces resource, used as is.
  std::string traces_endpoint;
  std::string service_name = "sluice";
  // Extra resource attributes (service.name comes from service_name).
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  // Extra HTTP request headers (e.g. authentication for a hosted collector).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string scope_name = "sluice";
  std::string scope_version;
  // https:// only: the CA bundle that verifies the collector (empty: the system's,
  // /etc/ssl/certs/ca-certificates.crt), and an optional client certificate and key (PEM).
  // The collector's name is always checked against its certificate.
  std::string ca_file;
  std::string client_cert_file;
  std::string client_key_file;

  std::size_t max_queue_size = 2048;  // spans held (queued + being exported)
  std::size_t max_export_batch_size = 512;
  std::chrono::milliseconds schedule_delay{5000};   // export at least this often
  std::chrono::milliseconds export_timeout{10000};  // per HTTP attempt
  int max_retries = 5;                              // retries after the first attempt
  std::chrono::milliseconds initial_backoff{1000};  // doubled per retry, +-20% jitter
  std::chrono::milliseconds max_backoff{30000};     // also caps a server's Retry-After

  // The URL spans are posted to: traces_endpoint, or endpoint + "/v1/traces".
  std::string traces_url() const;
};

// Applies the OpenTelemetry environment variables over `base` (the environment wins, as for the
// OTel SDKs' own settings): OTEL_SERVICE_NAME; OTEL_EXPORTER_OTLP_ENDPOINT (base URL, replaces
// base.endpoint and clears base.traces_endpoint); OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (full URL);
// OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", percent-decoded; service.name there is used only
// without OTEL_SERVICE_NAME; one malformed entry discards the whole variable, as the OTel spec
// says); OTEL_EXPORTER_OTLP_[TRACES_]HEADERS (same format); OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT
// and OTEL_BSP_SCHEDULE_DELAY / OTEL_BSP_EXPORT_TIMEOUT (ms); OTEL_BSP_MAX_QUEUE_SIZE /
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE; OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE (ca_file),
// OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE and _CLIENT_KEY. Invalid values are ignored and
// described in `warnings`.
OtlpConfig from_env(OtlpConfig base, std::vector<std::string>* warnings = nullptr);

// Parses "k=v,k2=v2" with percent-decoding (W3C Baggage octets); nullopt on a malformed entry.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_key_value_list(
    std::string_view text);

// The OTLP/JSON ExportTraceServiceRequest body for `spans`: ids as lower-case hex, enums as
// integers, 64-bit integers as strings, non-finite doubles as "NaN"/"Infinity"/"-Infinity".
std::string encode_otlp_json(const OtlpConfig& config, const SpanData* spans, std::size_t count);

class OtlpExporter {
 public:
  // Called from the export thread when an export fails (for a warning log); may be empty.
  using ErrorHandler = std::function<void(const std::string& message)>;

  explicit OtlpExporter(OtlpConfig config, ErrorHandler on_error = {});
  ~OtlpExporter();  // shutdown()
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  // Never blocks on I/O: a short critical section, then returns. False (and dropped_total + 1)
  // when max_queue_size spans are already held or after shutdown().
  bool enqueue(SpanData&& span);
  // `records` holds `count` complete SpanRecordWriter records, copied into the queue. All or
  // none: false (and dropped_total + count) when they do not all fit, or after shutdown().
  bool enqueue_records(std::string_view records, std::size_t count);

  // Exports everything enqueued before the call; true when done within `timeout`.
  bool flush(std::chrono::milliseconds timeout);

  // Exports what is queued (no retry waits past `timeout`), then stops the thread. Idempotent.
  void shutdown(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

  uint64_t exported_total() const { return exported_.load(std::memory_order_relaxed); }
  // Spans lost: queue full, enqueued after shutdown, or in a batch that failed for good.
  uint64_t dropped_total() const { return dropped_.load(std::memory_order_relaxed); }
  // Batches given up on (non-retryable status, or max_retries exhausted).
  uint64_t failed_exports_total() const { return failed_exports_.load(std::memory_order_relaxed); }
  // HTTP attempts that were retried.
  uint64_t retries_total() const { return retries_.load(std::memory_order_relaxed); }
  std::size_t queue_size() const { return held_.load(std::memory_order_relaxed); }
  const std::string& url() const { return url_; }

 private:
  void run();
  // Under mu_: room for `count` more spans (else they are counted as dropped).
  bool admit_locked(std::size_t count);
  void export_batch(httplib::Client& client, const std::string& path, const ByteBuffer& body,
                    std::size_t count);
  // Sleeps up to `d`, waking early on shutdown; false if the shutdown deadline has passed.
  bool backoff_wait(std::chrono::milliseconds d);
  void report(const std::string& message);

  const OtlpConfig config_;
  const ErrorHandler on_error_;
  const std::string url_;
  const std::string json_prefix_;  // {"resourceSpans":[{"resource":...,"spans":[

  std::mutex mu_;
  std::condition_variable wake_;                         // the export thread waits here
  std::condition_variable flushed_;                      // flush() callers wait here
  ByteBuffer queue_;                                     // guarded by mu_: span records
  std::size_t queued_spans_ = 0;                         // guarded by mu_
  bool stopping_ = false;                                // guarded by mu_
  std::chrono::steady_clock::time_point stop_deadline_;  // guarded by mu_
  uint64_t flush_requested_ = 0;                         // guarded by mu_
  uint64_t flush_done_ = 0;                              // guarded by mu_

  std::atomic<std::size_t> held_{0};
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> failed_exports_{0};
  std::atomic<uint64_t> retries_{0};

  std::once_flag shutdown_once_;
  std::thread thread_;
};

}  // namespace sluice::observe
