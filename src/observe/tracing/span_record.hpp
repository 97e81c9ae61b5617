// SpanRecord: one finished span as a compact byte record, so a request thread can hand a span to
// the OTLP exporter by appending bytes to a reused buffer (no std::string per attribute, no
// vector, no allocation once the buffer is warm), and the exporter thread encodes OTLP/JSON from
// the records in large batches. Attribute keys known to sluice are one byte (their JSON is
// precomputed); other keys are stored inline.
//
//   ByteBuffer buf;
//   SpanRecordWriter w(buf, head, "GET api", trace_state);
//   w.str(AttrKey::kUrlPath, req.path());
//   w.i64(AttrKey::kHttpResponseStatusCode, 200);
//   w.finish();                                  // one record appended to buf
//   std::size_t used = append_span_json(buf, 0, json);   // {"traceId":...} appended to json
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "observe/byte_buffer.hpp"
#include "observe/tracing/span.hpp"

namespace sluice::observe {

enum class AttrKey : uint8_t {
  kHttpRequestMethod,
  kHttpRequestMethodOriginal,
  kUrlPath,
  kUrlScheme,
  kHttpRoute,
  kHttpResponseStatusCode,
  kServerAddress,
  kServerPort,
  kClientAddress,
  kUserAgentOriginal,
  kNetworkProtocolVersion,
  kSluiceRequestId,
  kSluiceAnsweredBy,
  kSluiceDetail,
  kSluiceUpstream,
  kSluiceUpstreamLatencyMs,
  kErrorType,
  kSluiceMiddlewareType,
  kSluiceMiddlewareSelfTimeNs,
  kSluiceAnswered,
  kSluiceSkipped,
  kEnduserId,
  kSluiceUserTier,
  kSluiceSampledBy,
  kCount,
  kInline = 0xff,  // the key follows in the record
};

// "url.path" for AttrKey::kUrlPath.
std::string_view attr_key_name(AttrKey key);

// The fixed part of a span.
struct SpanHead {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // all-zero for a root span
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;
  int32_t kind = kSpanKindServer;
  int32_t status_code = kStatusUnset;
  // One OTLP span link (all-zero: none): a replay's span names the request it replays.
  TraceId link_trace_id;
  SpanId link_span_id;
};

// Appends one record to `out`: the constructor writes the head, name and tracestate, each call
// one attribute (in order), finish() the status message and the record's length. A record is
// complete only after finish().
class SpanRecordWriter {
 public:
  SpanRecordWriter(ByteBuffer& out, const SpanHead& head, std::string_view name,
                   std::string_view trace_state);
  SpanRecordWriter(const SpanRecordWriter&) = delete;
  SpanRecordWriter& operator=(const SpanRecordWriter&) = delete;

  // Inline: a request thread calls these a dozen times per span.
  void str(AttrKey k, std::string_view value) {
    key(k);
    out_ += static_cast<char>(kValueString);
    bytes(value);
  }
  void i64(AttrKey k, int64_t value) {
    key(k);
    out_ += static_cast<char>(kValueInt);
    out_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void f64(AttrKey k, double value) {
    key(k);
    out_ += static_cast<char>(kValueDouble);
    out_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void boolean(AttrKey k, bool value) {
    key(k);
    out_ += static_cast<char>(kValueBool);
    out_ += static_cast<char>(value ? 1 : 0);
  }
  // Any key, any value (SpanData's attributes).
  void attribute(std::string_view key, const AttributeValue& value);
  // `status_message` is meaningful with kStatusError only.
  void finish(std::string_view status_message = {});

 private:
  // Value types as stored in a record.
  static constexpr uint8_t kValueString = 0, kValueInt = 1, kValueDouble = 2, kValueBool = 3;

  void u32(std::size_t v) {
    const auto n = static_cast<uint32_t>(v);
    std::memcpy(out_.extend(4), &n, 4);
  }
  void bytes(std::string_view s) {
    u32(s.size());
    out_.append(s);
  }
  void key(AttrKey k) {
    out_ += static_cast<char>(k);
    ++attributes_;
  }

  ByteBuffer& out_;
  const std::size_t start_;
  uint32_t attributes_ = 0;
};

// The record of a SpanData (its attribute keys inline).
void append_span_record(ByteBuffer& out, const SpanData& span);

// Appends the OTLP/JSON Span object of the record starting at records[at] to `out`; returns the
// record's size. Ids as lower-case hex, enums as integers, 64-bit integers as strings,
// non-finite doubles as "NaN"/"Infinity"/"-Infinity", every string escaped.
std::size_t append_span_json(std::string_view records, std::size_t at, ByteBuffer& out);

}  // namespace sluice::observe
