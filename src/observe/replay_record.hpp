// ReplayRecord — what the access log and the tracing observer are told about one replay of a
// queued write (the `queue` fallback, queue/store_and_forward.hpp): a replay has no Exchange of
// its own, so the observers that want to see replays implement ReplayRecorder too, and the
// fallback hands every replay's record to each of the config's observers that does.
//
//   for (auto& o : build.observers)
//     if (auto r = std::dynamic_pointer_cast<ReplayRecorder>(o)) r->on_replay(record);
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "observe/tracing/trace_context.hpp"

namespace sluice::observe {

struct ReplayRecord {
  std::string queue;  // the queue's name
  std::string id;     // the record's id in the queue
  int attempt = 0;    // 1 for the first replay
  std::string method, target, request_id, idempotency_key;
  std::string upstream;  // host:port, empty when no endpoint was tried
  int status = 0;        // 0: no answer
  std::string error;     // when there was no answer
  std::chrono::system_clock::time_point start;
  std::chrono::nanoseconds latency{0};
  // The replay's own span (a new trace: the upstream sees it in traceparent), and the original
  // request's span from the stored traceparent, linked (invalid when the write had none).
  TraceId trace_id;
  SpanId span_id;
  bool sampled = false;  // the original request was sampled (or, without one, a new decision)
  TraceId linked_trace_id;
  SpanId linked_span_id;
};

class ReplayRecorder {
 public:
  virtual ~ReplayRecorder() = default;
  // On the queue's replayer thread: must not block.
  virtual void on_replay(const ReplayRecord& record) = 0;
};

}  // namespace sluice::observe
