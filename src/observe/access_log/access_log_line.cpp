#include "observe/access_log/access_log_line.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>

#include "observe/json_escape.hpp"
#include "observe/tracing/trace_context.hpp"

namespace sluice::observe {

namespace {

// The record: this head (memcpy'd, the buffer gives no alignment), then the strings back to back
// in the order of `len`.
enum StringField : std::size_t {
  kRequestId,
  kMethod,
  kPath,
  kClientIp,
  kUserAgent,
  kRoute,
  kUpstream,
  kAnsweredBy,
  kDetail,
  kSkipped,
  kUser,
  kTier,
  kStringFields
};

struct RecordHead {
  int64_t start_unix_ns;
  int64_t latency_ns;
  int64_t upstream_latency_ns;
  uint64_t bytes_in;
  uint64_t bytes_out;
  int32_t status;
  uint8_t bucket;
  uint8_t has_trace;
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint32_t len[kStringFields];
};

void append_uint(ByteBuffer& out, uint64_t v) {
  constexpr std::size_t kMax = 24;
  const std::size_t at = out.size();
  char* p = out.extend(kMax);
  const auto r = std::to_chars(p, p + kMax, v);
  out.truncate(at + static_cast<std::size_t>(r.ptr - p));
}

// Milliseconds with 3 decimals, rounded to the microsecond; integer arithmetic only.
void append_millis(ByteBuffer& out, int64_t ns) {
  const auto us = static_cast<uint64_t>(std::max<int64_t>(0, ns) + 500) / 1000;
  append_uint(out, us / 1000);
  const auto frac = static_cast<unsigned>(us % 1000);
  const char digits[] = {'.', static_cast<char>('0' + frac / 100),
                         static_cast<char>('0' + frac / 10 % 10),
                         static_cast<char>('0' + frac % 10)};
  out.append(digits, sizeof digits);
}

// `key` is the literal `,"name":` so that the constant part is one append.
void field(ByteBuffer& out, std::string_view key, std::string_view value) {
  out.append(key);
  append_json_string(out, value);
}

void number_field(ByteBuffer& out, std::string_view key, uint64_t value) {
  out.append(key);
  append_uint(out, value);
}

// Writes the 24 characters of "2026-01-02T03:04:05.678Z" to out.
void format_rfc3339_millis(std::chrono::system_clock::time_point t, char* out) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const int millis = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
  // gmtime_r is not cheap: remember the formatted second, per thread.
  thread_local time_t cached_secs = -1;
  thread_local char cached[24];
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_secs = secs;
  }
  std::memcpy(out, cached, 19);
  out[19] = '.';
  out[20] = static_cast<char>('0' + millis / 100);
  out[21] = static_cast<char>('0' + millis / 10 % 10);
  out[22] = static_cast<char>('0' + millis % 10);
  out[23] = 'Z';
}

}  // namespace

void append_rfc3339_millis(std::string& out, std::chrono::system_clock::time_point t) {
  char buf[24];
  format_rfc3339_millis(t, buf);
  out.append(buf, sizeof buf);
}

void append_rfc3339_millis(ByteBuffer& out, std::chrono::system_clock::time_point t) {
  format_rfc3339_millis(t, out.extend(24));
}

AccessLogFields access_log_fields(const Exchange& ex, std::chrono::nanoseconds latency,
                                  LatencyBucket bucket) {
  const Request& req = ex.request();
  const Context& ctx = ex.context();
  AccessLogFields f;
  f.start_unix_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(ctx.start_wall().time_since_epoch())
          .count();
  f.latency_ns = latency.count();
  f.upstream_latency_ns = ex.upstream_latency().count();
  f.bytes_in = ex.bytes_in();
  f.bytes_out = ex.bytes_out();  // a streamed answer: its declared length
  f.status = ex.response().status();
  f.bucket = bucket;
  if (ctx.trace().valid) {
    f.has_trace = true;
    std::memcpy(f.trace_id, ctx.trace().trace_id.data(), 16);
    std::memcpy(f.span_id, ctx.trace().span_id.data(), 8);
  }
  f.request_id = ctx.request_id();
  f.method = req.method();
  f.path = req.path();
  f.client_ip = ctx.client_ip();
  f.user_agent = req.header("user-agent");
  f.route = ex.route() ? std::string_view(ex.route()->name) : std::string_view();
  f.upstream = ex.upstream();
  f.answered_by = ex.answered_by();
  f.detail = ex.detail();
  f.skipped = ctx.skipped();
  f.user = ctx.user();
  f.tier = ctx.tier();
  return f;
}

void append_access_log_record(ByteBuffer& out, const AccessLogFields& f) {
  const std::string_view strings[kStringFields] = {
      f.request_id, f.method,      f.path,   f.client_ip, f.user_agent, f.route,
      f.upstream,   f.answered_by, f.detail, f.skipped,   f.user,       f.tier};
  RecordHead h;
  h.start_unix_ns = f.start_unix_ns;
  h.latency_ns = f.latency_ns;
  h.upstream_latency_ns = f.upstream_latency_ns;
  h.bytes_in = f.bytes_in;
  h.bytes_out = f.bytes_out;
  h.status = f.status;
  h.bucket = static_cast<uint8_t>(f.bucket);
  h.has_trace = f.has_trace ? 1 : 0;
  std::memcpy(h.trace_id, f.trace_id, sizeof h.trace_id);
  std::memcpy(h.span_id, f.span_id, sizeof h.span_id);
  std::size_t total = sizeof h;
  for (std::size_t i = 0; i < kStringFields; ++i) {
    h.len[i] = static_cast<uint32_t>(strings[i].size());
    total += strings[i].size();
  }
  char* p = out.extend(total);
  std::memcpy(p, &h, sizeof h);
  p += sizeof h;
  for (const auto& s : strings) {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
}

void format_access_log_record(std::string_view record, ByteBuffer& out) {
  RecordHead h;
  std::memcpy(&h, record.data(), sizeof h);
  std::string_view s[kStringFields];
  std::size_t at = sizeof h;
  for (std::size_t i = 0; i < kStringFields; ++i) {
    s[i] = record.substr(at, h.len[i]);
    at += h.len[i];
  }
  out += "{\"time\":\"";
  append_rfc3339_millis(out, std::chrono::system_clock::time_point(
                                 std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                     std::chrono::nanoseconds(h.start_unix_ns))));
  out += '"';
  field(out, ",\"request_id\":", s[kRequestId]);
  if (h.has_trace != 0) {
    out += ",\"trace_id\":\"";
    to_hex(h.trace_id, 16, out.extend(32));
    out += "\",\"span_id\":\"";
    to_hex(h.span_id, 8, out.extend(16));
    out += '"';
  }
  field(out, ",\"method\":", s[kMethod]);
  field(out, ",\"path\":", s[kPath]);
  number_field(out, ",\"status_code\":", static_cast<uint64_t>(std::max(0, h.status)));
  field(out, ",\"client_ip\":", s[kClientIp]);
  if (!s[kUser].empty()) field(out, ",\"user\":", s[kUser]);
  if (!s[kTier].empty()) field(out, ",\"user_tier\":", s[kTier]);
  out += ",\"latency_ms\":";
  append_millis(out, h.latency_ns);
  out += ",\"latency_bucket\":\"";
  out += to_string(static_cast<LatencyBucket>(h.bucket));
  out += '"';
  number_field(out, ",\"bytes_in\":", h.bytes_in);
  number_field(out, ",\"bytes_out\":", h.bytes_out);
  field(out, ",\"user_agent\":", s[kUserAgent]);
  field(out, ",\"route\":", s[kRoute]);
  if (!s[kUpstream].empty()) {
    field(out, ",\"upstream\":", s[kUpstream]);
    out += ",\"upstream_latency_ms\":";
    append_millis(out, h.upstream_latency_ns);
  }
  if (!s[kAnsweredBy].empty()) field(out, ",\"answered_by\":", s[kAnsweredBy]);
  if (!s[kDetail].empty()) field(out, ",\"detail\":", s[kDetail]);
  if (!s[kSkipped].empty()) field(out, ",\"skipped\":", s[kSkipped]);
  out += "}\n";
}

std::string format_access_log_line(const Exchange& ex, std::chrono::nanoseconds latency,
                                   LatencyBucket bucket) {
  ByteBuffer record;
  append_access_log_record(record, access_log_fields(ex, latency, bucket));
  ByteBuffer out;
  format_access_log_record(record.view(), out);
  return std::string(out.view());
}

}  // namespace sluice::observe
