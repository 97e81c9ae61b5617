// SpanData: one finished span as the OTLP exporter sends it (OTLP trace data model, reduced to
// what sluice records: no events or links).
//
//   SpanData s{.trace_id = tp.trace_id, .span_id = random_span_id(), .name = "GET /users"};
//   s.attributes.push_back({"http.response.status_code", int64_t{200}});
//   exporter.enqueue(std::move(s));
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "observe/tracing/trace_context.hpp"

namespace sluice::observe {

// Values of the OTLP SpanKind enum, written as integers in OTLP/JSON.
enum SpanKind : int {
  kSpanKindUnspecified = 0,
  kSpanKindInternal = 1,
  kSpanKindServer = 2,
  kSpanKindClient = 3,
  kSpanKindProducer = 4,
  kSpanKindConsumer = 5,
};

// Values of the OTLP Status.StatusCode enum. Per the HTTP semantic conventions a server span is
// kStatusError for 5xx only, and left kStatusUnset otherwise.
enum StatusCode : int {
  kStatusUnset = 0,
  kStatusOk = 1,
  kStatusError = 2,
};

using AttributeValue = std::variant<std::string, int64_t, double, bool>;

struct Attribute {
  std::string key;
  AttributeValue value;
};

struct SpanData {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // all-zero for a root span
  std::string name;
  int kind = kSpanKindServer;
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;
  std::vector<Attribute> attributes;
  int status_code = kStatusUnset;
  std::string status_message;  // only meaningful with kStatusError
  std::string trace_state;     // the span's tracestate as formatted for propagation
};

}  // namespace sluice::observe
