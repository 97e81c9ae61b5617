#include "observe/tracing/span_record.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>

#include "observe/json_escape.hpp"

namespace sluice::observe {
namespace {

// Layout of a record (all integers in host byte order, memcpy'd: the buffer gives no alignment):
//   u32 size of the whole record | u32 attribute count | SpanHead | str name | str trace_state
//   | attribute * count | str status_message
// str = u32 length + bytes; attribute = u8 AttrKey [+ str key when kInline] + u8 type + value,
// value = str | i64 | f64 | u8.
enum ValueType : uint8_t { kString, kInt, kDouble, kBool };  // SpanRecordWriter::kValue*

constexpr std::size_t kSizeOffset = 0;
constexpr std::size_t kCountOffset = 4;
constexpr std::size_t kHeadOffset = 8;

#define SLUICE_KEY(name) "{\"key\":\"" name "\",\"value\":"
// The JSON before each known key's value, indexed by AttrKey.
constexpr std::string_view kKeyJson[] = {
    SLUICE_KEY("http.request.method"),
    SLUICE_KEY("http.request.method_original"),
    SLUICE_KEY("url.path"),
    SLUICE_KEY("url.scheme"),
    SLUICE_KEY("http.route"),
    SLUICE_KEY("http.response.status_code"),
    SLUICE_KEY("server.address"),
    SLUICE_KEY("server.port"),
    SLUICE_KEY("client.address"),
    SLUICE_KEY("user_agent.original"),
    SLUICE_KEY("network.protocol.version"),
    SLUICE_KEY("sluice.request_id"),
    SLUICE_KEY("sluice.answered_by"),
    SLUICE_KEY("sluice.detail"),
    SLUICE_KEY("sluice.upstream"),
    SLUICE_KEY("sluice.upstream_latency_ms"),
    SLUICE_KEY("error.type"),
    SLUICE_KEY("sluice.middleware.type"),
    SLUICE_KEY("sluice.middleware.self_time_ns"),
    SLUICE_KEY("sluice.answered"),
    SLUICE_KEY("sluice.skipped"),
    SLUICE_KEY("enduser.id"),
    SLUICE_KEY("sluice.user_tier"),
    SLUICE_KEY("sluice.sampled_by"),
};
#undef SLUICE_KEY
static_assert(std::size(kKeyJson) == static_cast<std::size_t>(AttrKey::kCount));

constexpr std::size_t kKeyJsonPrefix = std::string_view("{\"key\":\"").size();
constexpr std::size_t kKeyJsonSuffix = std::string_view("\",\"value\":").size();

// Reads the record sequentially.
class Reader {
 public:
  explicit Reader(const char* p) : p_(p) {}
  uint32_t u32() {
    uint32_t v;
    std::memcpy(&v, p_, 4);
    p_ += 4;
    return v;
  }
  uint8_t u8() { return static_cast<uint8_t>(*p_++); }
  std::string_view str() {
    const uint32_t n = u32();
    const std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  template <class T>
  T pod() {
    T v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }

 private:
  const char* p_;
};

template <class Int>
void append_int(ByteBuffer& out, Int v) {
  constexpr std::size_t kMax = 24;
  const std::size_t at = out.size();
  char* p = out.extend(kMax);
  const auto r = std::to_chars(p, p + kMax, v);
  out.truncate(at + static_cast<std::size_t>(r.ptr - p));
}

void append_hex(ByteBuffer& out, const uint8_t* b, std::size_t n) {
  to_hex(b, n, out.extend(2 * n));
}

void append_value_json(ByteBuffer& out, Reader& r) {
  switch (r.u8()) {
    case kString:
      out += "{\"stringValue\":";
      append_json_string(out, r.str());
      break;
    case kInt:
      out += "{\"intValue\":\"";
      append_int(out, r.pod<int64_t>());
      out += '"';
      break;
    case kDouble: {
      const double d = r.pod<double>();
      out += "{\"doubleValue\":";
      if (std::isnan(d)) {
        out += "\"NaN\"";
      } else if (std::isinf(d)) {
        out += d > 0 ? "\"Infinity\"" : "\"-Infinity\"";
      } else {
        char buf[32];
        const auto res = std::to_chars(buf, buf + sizeof buf, d);
        out.append(buf, static_cast<std::size_t>(res.ptr - buf));
      }
      break;
    }
    default:
      out += "{\"boolValue\":";
      out += r.u8() != 0 ? "true" : "false";
      break;
  }
  out += "}}";
}

}  // namespace

std::string_view attr_key_name(AttrKey key) {
  const std::string_view json = kKeyJson[static_cast<std::size_t>(key)];
  return json.substr(kKeyJsonPrefix, json.size() - kKeyJsonPrefix - kKeyJsonSuffix);
}

SpanRecordWriter::SpanRecordWriter(ByteBuffer& out, const SpanHead& head, std::string_view name,
                                   std::string_view trace_state)
    : out_(out), start_(out.size()) {
  std::memset(out_.extend(kHeadOffset), 0, kHeadOffset);  // size and count: see finish()
  out_.append(reinterpret_cast<const char*>(&head), sizeof head);
  bytes(name);
  bytes(trace_state);
}

void SpanRecordWriter::attribute(std::string_view name, const AttributeValue& value) {
  key(AttrKey::kInline);
  bytes(name);
  if (const auto* s = std::get_if<std::string>(&value)) {
    out_ += static_cast<char>(kString);
    bytes(*s);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    out_ += static_cast<char>(kInt);
    out_.append(reinterpret_cast<const char*>(i), sizeof *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    out_ += static_cast<char>(kDouble);
    out_.append(reinterpret_cast<const char*>(d), sizeof *d);
  } else {
    out_ += static_cast<char>(kBool);
    out_ += static_cast<char>(std::get<bool>(value) ? 1 : 0);
  }
}

void SpanRecordWriter::finish(std::string_view status_message) {
  bytes(status_message);
  const auto size = static_cast<uint32_t>(out_.size() - start_);
  std::memcpy(out_.data() + start_ + kSizeOffset, &size, 4);
  std::memcpy(out_.data() + start_ + kCountOffset, &attributes_, 4);
}

void append_span_record(ByteBuffer& out, const SpanData& span) {
  SpanHead head;
  head.trace_id = span.trace_id;
  head.span_id = span.span_id;
  head.parent_span_id = span.parent_span_id;
  head.start_unix_nano = span.start_unix_nano;
  head.end_unix_nano = span.end_unix_nano;
  head.kind = span.kind;
  head.status_code = span.status_code;
  SpanRecordWriter w(out, head, span.name, span.trace_state);
  for (const auto& a : span.attributes)
    w.attribute(a.key, a.value);
  w.finish(span.status_message);
}

std::size_t append_span_json(std::string_view records, std::size_t at, ByteBuffer& out) {
  Reader r(records.data() + at);
  const uint32_t size = r.u32();
  const uint32_t count = r.u32();
  const auto head = r.pod<SpanHead>();
  const std::string_view name = r.str();
  const std::string_view trace_state = r.str();

  out += "{\"traceId\":\"";
  append_hex(out, head.trace_id.b, 16);
  out += "\",\"spanId\":\"";
  append_hex(out, head.span_id.b, 8);
  out += '"';
  if (head.parent_span_id.is_valid()) {
    out += ",\"parentSpanId\":\"";
    append_hex(out, head.parent_span_id.b, 8);
    out += '"';
  }
  if (!trace_state.empty()) {
    out += ",\"traceState\":";
    append_json_string(out, trace_state);
  }
  out += ",\"name\":";
  append_json_string(out, name);
  out += ",\"kind\":";
  append_int(out, head.kind);
  out += ",\"startTimeUnixNano\":\"";
  append_int(out, head.start_unix_nano);
  out += "\",\"endTimeUnixNano\":\"";
  append_int(out, head.end_unix_nano);
  out += "\",\"attributes\":[";
  for (uint32_t i = 0; i < count; ++i) {
    if (i != 0) out += ',';
    const auto k = static_cast<AttrKey>(r.u8());
    if (k == AttrKey::kInline) {
      out += "{\"key\":";
      append_json_string(out, r.str());
      out += ",\"value\":";
    } else {
      out += kKeyJson[static_cast<std::size_t>(k)];
    }
    append_value_json(out, r);
  }
  out += ']';
  if (head.link_span_id.is_valid()) {
    out += ",\"links\":[{\"traceId\":\"";
    append_hex(out, head.link_trace_id.b, 16);
    out += "\",\"spanId\":\"";
    append_hex(out, head.link_span_id.b, 8);
    out += "\"}]";
  }
  const std::string_view status_message = r.str();
  if (head.status_code != kStatusUnset || !status_message.empty()) {
    out += ",\"status\":{\"code\":";
    append_int(out, head.status_code);
    if (!status_message.empty()) {
      out += ",\"message\":";
      append_json_string(out, status_message);
    }
    out += '}';
  }
  out += '}';
  return size;
}

}  // namespace sluice::observe
