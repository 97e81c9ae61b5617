#include "observe/access_log/access_log_line.hpp"

#include <charconv>
#include <ctime>

#include "observe/json_escape.hpp"
#include "observe/trace_context.hpp"

namespace sluice::observe {

namespace {

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_millis(std::string& out, std::chrono::nanoseconds d) {
  char buf[32];
  const double ms = static_cast<double>(d.count()) / 1e6;
  auto r = std::to_chars(buf, buf + sizeof buf, ms, std::chars_format::fixed, 3);
  out.append(buf, r.ptr);
}

void field(std::string& out, std::string_view key, std::string_view value) {
  out += ",\"";
  out.append(key);
  out += "\":";
  append_json_string(out, value);
}

void number_field(std::string& out, std::string_view key, uint64_t value) {
  out += ",\"";
  out.append(key);
  out += "\":";
  append_uint(out, value);
}

}  // namespace

void append_rfc3339_millis(std::string& out, std::chrono::system_clock::time_point t) {
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
  out.append(cached, 19);
  const char frac[] = {'.', static_cast<char>('0' + millis / 100),
                       static_cast<char>('0' + millis / 10 % 10),
                       static_cast<char>('0' + millis % 10), 'Z'};
  out.append(frac, sizeof frac);
}

std::string format_access_log_line(const Exchange& ex, std::chrono::nanoseconds latency,
                                   std::string_view latency_bucket) {
  const Request& req = ex.request();
  const Context& ctx = ex.context();
  std::string out;
  out.reserve(512);
  out += "{\"time\":\"";
  append_rfc3339_millis(out, ctx.start_wall());
  out += '"';
  field(out, "request_id", ctx.request_id());
  if (ctx.trace().valid) {
    char hex[32];
    to_hex(ctx.trace().trace_id.data(), 16, hex);
    field(out, "trace_id", {hex, 32});
    to_hex(ctx.trace().span_id.data(), 8, hex);
    field(out, "span_id", {hex, 16});
  }
  field(out, "method", req.method());
  field(out, "path", req.path());
  number_field(out, "status_code", static_cast<uint64_t>(ex.response().status()));
  field(out, "client_ip", ctx.client_ip());
  out += ",\"latency_ms\":";
  append_millis(out, latency);
  field(out, "latency_bucket", latency_bucket);
  number_field(out, "bytes_in", ex.bytes_in());
  number_field(out, "bytes_out", ex.response().body().size());
  field(out, "user_agent", req.header("user-agent"));
  field(out, "route", ex.route() ? std::string_view(ex.route()->name) : std::string_view());
  if (!ex.upstream().empty()) {
    field(out, "upstream", ex.upstream());
    out += ",\"upstream_latency_ms\":";
    append_millis(out, ex.upstream_latency());
  }
  if (!ex.answered_by().empty()) field(out, "answered_by", ex.answered_by());
  if (!ex.detail().empty()) field(out, "detail", ex.detail());
  out += "}\n";
  return out;
}

}  // namespace sluice::observe
