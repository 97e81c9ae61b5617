#include "observe/tracing/tracing_observer.hpp"

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/header_name.hpp"
#include "observe/metrics/http_metrics.hpp"
#include "observe/tracing/span_record.hpp"
#include "observe/tracing/trace_context.hpp"

namespace sluice::observe {

namespace {

// TraceSlot::sampling bits.
constexpr uint8_t kDeferred = 1;    // a tail decision reserved in on_request_start
constexpr uint8_t kFromParent = 2;  // the head decision followed the incoming sampled flag

// The incoming traceparent, or nullopt when absent, invalid, or sent as more than one field.
// traceparent is not a list (Trace Context Level 2 §3.2.2), so several fields cannot be combined
// into a valid value (RFC 9110 §5.3): the request starts a new trace, like any invalid one
// (§4.1.2), instead of continuing whichever field came first.
std::optional<TraceParent> incoming_traceparent(const Request& req) {
  struct Seen {
    std::string_view first;
    int fields = 0;
  } seen;
  // One reference captured: std::function keeps it inline, no allocation per request.
  req.visit_headers([&seen](std::string_view name, std::string_view value) {
    if (name.size() != 11 || strncasecmp(name.data(), "traceparent", 11) != 0) return;
    if (seen.fields++ == 0) seen.first = value;
  });
  if (seen.fields != 1) return std::nullopt;
  return parse_traceparent(seen.first);
}

// The incoming tracestate: every header line joined with ',' (§3.3.2's rule for repeated
// fields), or nullopt when absent or discarded as a whole (parse_tracestate's rule).
std::optional<TraceState> incoming_tracestate(const Request& req) {
  if (!req.has_header("tracestate")) return std::nullopt;
  std::string joined;
  int lines = 0;
  req.visit_headers([&](std::string_view name, std::string_view value) {
    if (name.size() != 10 || strncasecmp(name.data(), "tracestate", 10) != 0) return;
    if (lines++ > 0) joined += ',';
    joined.append(value);
  });
  return parse_tracestate(joined);
}

uint64_t unix_nanos(std::chrono::system_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

// Host header -> server.address / server.port ("[::1]:8080", "example.com").
void add_server_address(SpanRecordWriter& w, std::string_view host) {
  if (host.empty()) return;
  std::string_view port;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close != std::string_view::npos) {
      if (close + 1 < host.size() && host[close + 1] == ':') port = host.substr(close + 2);
      host = host.substr(1, close - 1);
    }
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  w.str(AttrKey::kServerAddress, host);
  int64_t p = 0;
  if (!port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    for (char c : port)
      p = p * 10 + (c - '0');
    w.i64(AttrKey::kServerPort, p);
  }
}

// The span's name, "{method} {http.route}" (semconv), in a buffer the thread reuses.
std::string_view span_name(std::string_view method, std::string_view route) {
  thread_local std::string name;
  name.assign(method);
  if (!route.empty()) name.append(" ").append(route);
  return name;
}

}  // namespace

void TracingObserver::on_request_start(Exchange& ex) {
  Request& req = ex.request();
  TraceSlot& slot = ex.context().trace();
  const std::optional<TraceParent> parent = incoming_traceparent(req);
  // tracestate without a valid parent is ignored (§3.3); a discarded tracestate changes nothing
  // else: the parent is still continued.
  std::optional<TraceState> state;
  if (parent) state = incoming_tracestate(req);

  const TraceId trace_id = parent ? parent->trace_id : random_trace_id();
  // The head decision: what the upstream is told (traceparent's sampled flag) and what keeps an
  // ordinary request; the tail rules may still keep this request's spans at its end.
  const bool sampled = sampler_.should_sample(parent ? &*parent : nullptr, trace_id);
  const SpanId span_id = random_span_id();
  std::memcpy(slot.trace_id.data(), trace_id.b, 16);
  std::memcpy(slot.span_id.data(), span_id.b, 8);
  if (parent)
    std::memcpy(slot.parent_span_id.data(), parent->parent_id.b, 8);
  else
    slot.parent_span_id.fill(0);
  slot.flags = outgoing_flags(parent ? &*parent : nullptr, sampled);
  slot.trace_state = state ? format_tracestate(*state) : std::string();
  slot.valid = true;
  slot.sampling = static_cast<uint8_t>((tail_->admit() ? kDeferred : 0) |
                                       (parent && sampler_.is_parent_based() ? kFromParent : 0));

  // What the upstream sees: sluice's server span as its parent.
  char traceparent[kTraceparentLength];
  format_traceparent({0, trace_id, span_id, slot.flags}, traceparent);
  // Names resolved once (core/header_name.hpp): Request::set_header looks the code up per call.
  static const detail::HeaderName kTraceparent("traceparent");
  static const detail::HeaderName kTracestate("tracestate");
  detail::set_field(req, kTraceparent, {traceparent, sizeof traceparent});
  if (slot.trace_state.empty())
    detail::remove_fields(req, kTracestate.text);
  else
    detail::set_field(req, kTracestate, slot.trace_state);
}

void TracingObserver::on_request_end(Exchange& ex) {
  const TraceSlot& slot = ex.context().trace();
  if (!slot.valid) return;
  const int status = ex.response().status();
  const auto elapsed = ex.finished_at() - ex.context().start_steady();
  const SampleReason why =
      tail_->decide((slot.sampling & kDeferred) != 0, (slot.flags & kFlagSampled) != 0,
                    (slot.sampling & kFromParent) != 0, status, elapsed);
  if (!kept(why)) return;
  const Request& req = ex.request();
  const uint64_t start = unix_nanos(ex.context().start_wall());
  const std::string_view route = ex.route() ? std::string_view(ex.route()->name) : "";
  const std::string_view method = req.method();
  const bool known = kMethodLabels[HttpMetrics::method_index(method)] != "other";

  SpanHead head;
  std::memcpy(head.trace_id.b, slot.trace_id.data(), 16);
  std::memcpy(head.span_id.b, slot.span_id.data(), 8);
  std::memcpy(head.parent_span_id.b, slot.parent_span_id.data(), 8);
  head.kind = kSpanKindServer;
  head.start_unix_nano = start;
  head.end_unix_nano = start + static_cast<uint64_t>(std::max<int64_t>(0, elapsed.count()));
  if (status >= 500) head.status_code = kStatusError;

  // The request thread only copies bytes into a buffer it reuses; the exporter thread encodes.
  thread_local ByteBuffer records;
  records.clear();
  std::size_t count = 1;
  {
    SpanRecordWriter w(records, head, span_name(known ? method : "HTTP", route), slot.trace_state);
    w.str(AttrKey::kHttpRequestMethod, known ? method : "_OTHER");
    if (!known) w.str(AttrKey::kHttpRequestMethodOriginal, method);
    w.str(AttrKey::kUrlPath, req.path());
    w.str(AttrKey::kUrlScheme, "http");
    if (!route.empty()) w.str(AttrKey::kHttpRoute, route);
    w.i64(AttrKey::kHttpResponseStatusCode, status);
    add_server_address(w, req.header("host"));
    if (auto ip = ex.context().client_ip(); !ip.empty()) w.str(AttrKey::kClientAddress, ip);
    if (auto ua = req.header("user-agent"); !ua.empty()) w.str(AttrKey::kUserAgentOriginal, ua);
    w.str(AttrKey::kNetworkProtocolVersion, req.version() == 10 ? "1.0" : "1.1");
    if (auto id = ex.context().request_id(); !id.empty()) w.str(AttrKey::kSluiceRequestId, id);
    // Set only by an authentication middleware, never from a client's say-so.
    if (const auto& user = ex.context().user(); !user.empty()) w.str(AttrKey::kEnduserId, user);
    if (const auto& tier = ex.context().tier(); !tier.empty())
      w.str(AttrKey::kSluiceUserTier, tier);
    if (auto by = ex.answered_by(); !by.empty()) w.str(AttrKey::kSluiceAnsweredBy, by);
    if (auto d = ex.detail(); !d.empty()) w.str(AttrKey::kSluiceDetail, d);
    if (auto sk = ex.context().skipped(); !sk.empty()) w.str(AttrKey::kSluiceSkipped, sk);
    w.str(AttrKey::kSluiceSampledBy, reason_label(why));
    if (auto up = ex.upstream(); !up.empty()) {
      w.str(AttrKey::kSluiceUpstream, up);
      w.f64(AttrKey::kSluiceUpstreamLatencyMs,
            std::chrono::duration<double, std::milli>(ex.upstream_latency()).count());
    }
    if (status >= 500) {
      char code[16];
      const auto r = std::to_chars(code, code + sizeof code, status);
      w.str(AttrKey::kErrorType, {code, static_cast<std::size_t>(r.ptr - code)});
    }
    w.finish(status >= 500 ? ex.detail() : std::string_view());
  }

  if (per_middleware_spans_ && ex.chain() != nullptr) {
    // Children laid end to end in chain order, each as long as that middleware's self time
    // (pre_handle + post_handle): the lengths are measured, the positions are not.
    const auto& active = ex.chain()->active();
    uint64_t at = start;
    for (std::size_t i = 0; i < active.size(); ++i) {
      const auto self = ex.middleware_time(i);
      if (self.count() <= 0) continue;  // not entered
      SpanHead child;
      child.trace_id = head.trace_id;
      child.span_id = random_span_id();
      child.parent_span_id = head.span_id;
      child.kind = kSpanKindInternal;
      child.start_unix_nano = at;
      at += static_cast<uint64_t>(self.count());
      child.end_unix_nano = at;
      SpanRecordWriter w(records, child, active[i]->name(), {});
      w.str(AttrKey::kSluiceMiddlewareType, active[i]->type());
      w.i64(AttrKey::kSluiceMiddlewareSelfTimeNs, self.count());
      if (ex.answered_by() == active[i]->name()) w.boolean(AttrKey::kSluiceAnswered, true);
      w.finish();
      ++count;
    }
  }
  exporter_->enqueue_records(records.view(), count);
}

void TracingObserver::on_replay(const ReplayRecord& rec) {
  const bool failed = rec.status == 0 || rec.status >= 500;
  if (!rec.trace_id.is_valid() || (!rec.sampled && !failed)) return;
  SpanHead head;
  head.trace_id = rec.trace_id;
  head.span_id = rec.span_id;
  head.kind = kSpanKindClient;
  head.start_unix_nano = unix_nanos(rec.start);
  head.end_unix_nano =
      head.start_unix_nano + static_cast<uint64_t>(std::max<int64_t>(0, rec.latency.count()));
  if (failed) head.status_code = kStatusError;
  head.link_trace_id = rec.linked_trace_id;
  head.link_span_id = rec.linked_span_id;
  const std::string detail = "replay:" + rec.id + ";attempt=" + std::to_string(rec.attempt);
  thread_local ByteBuffer records;
  records.clear();
  {
    const std::string_view path = std::string_view(rec.target).substr(0, rec.target.find('?'));
    SpanRecordWriter w(records, head, rec.method + " replay " + rec.queue, {});
    w.str(AttrKey::kHttpRequestMethod, rec.method);
    w.str(AttrKey::kUrlPath, path);
    if (rec.status > 0) w.i64(AttrKey::kHttpResponseStatusCode, rec.status);
    if (!rec.upstream.empty()) w.str(AttrKey::kSluiceUpstream, rec.upstream);
    if (!rec.request_id.empty()) w.str(AttrKey::kSluiceRequestId, rec.request_id);
    w.str(AttrKey::kSluiceAnsweredBy, "queue:" + rec.queue);
    w.str(AttrKey::kSluiceDetail, detail);
    w.finish(failed ? std::string_view(rec.error.empty() ? "status " + std::to_string(rec.status)
                                                         : rec.error)
                    : std::string_view());
  }
  exporter_->enqueue_records(records.view(), 1);
}

}  // namespace sluice::observe
