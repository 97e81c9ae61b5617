#include "observe/tracing/tracing_observer.hpp"

#include <strings.h>

#include <algorithm>
#include <cstring>

#include "observe/metrics/http_metrics.hpp"
#include "observe/span.hpp"
#include "observe/trace_context.hpp"

namespace sluice::observe {

namespace {

// The incoming tracestate: every header line joined with ',' (the spec's rule for repeated
// headers), or nullopt when absent or invalid.
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
void add_server_address(std::vector<Attribute>& attrs, std::string_view host) {
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
  attrs.push_back({"server.address", std::string(host)});
  int64_t p = 0;
  if (!port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    for (char c : port)
      p = p * 10 + (c - '0');
    attrs.push_back({"server.port", p});
  }
}

}  // namespace

void TracingObserver::on_request_start(Exchange& ex) {
  Request& req = ex.request();
  TraceSlot& slot = ex.context().trace();
  const std::string_view header = req.header("traceparent");
  std::optional<TraceParent> parent;
  if (!header.empty()) parent = parse_traceparent(header);
  std::optional<TraceState> state;
  if (parent) state = incoming_tracestate(req);  // tracestate without a valid parent is ignored

  const TraceId trace_id = parent ? parent->trace_id : random_trace_id();
  const bool sampled = sampler_.should_sample(parent ? &*parent : nullptr, trace_id);
  const SpanId span_id = random_span_id();
  std::memcpy(slot.trace_id.data(), trace_id.b, 16);
  std::memcpy(slot.span_id.data(), span_id.b, 8);
  if (parent)
    std::memcpy(slot.parent_span_id.data(), parent->parent_id.b, 8);
  else
    slot.parent_span_id.fill(0);
  slot.flags = sampled ? kFlagSampled : 0;
  slot.trace_state = state ? format_tracestate(*state) : std::string();
  slot.valid = true;

  // What the upstream sees: sluice's server span as its parent.
  req.set_header("traceparent", format_traceparent({0, trace_id, span_id, slot.flags}));
  if (slot.trace_state.empty())
    req.remove_header("tracestate");
  else
    req.set_header("tracestate", slot.trace_state);
}

void TracingObserver::on_request_end(Exchange& ex) {
  const TraceSlot& slot = ex.context().trace();
  if (!slot.valid || (slot.flags & kFlagSampled) == 0) return;
  const Request& req = ex.request();
  const int status = ex.response().status();
  const auto elapsed = std::chrono::steady_clock::now() - ex.context().start_steady();
  const uint64_t start = unix_nanos(ex.context().start_wall());
  const std::string_view route = ex.route() ? std::string_view(ex.route()->name) : "";
  const std::string_view method = req.method();
  const bool known = kMethodLabels[HttpMetrics::method_index(method)] != "other";

  SpanData span;
  std::memcpy(span.trace_id.b, slot.trace_id.data(), 16);
  std::memcpy(span.span_id.b, slot.span_id.data(), 8);
  std::memcpy(span.parent_span_id.b, slot.parent_span_id.data(), 8);
  span.kind = kSpanKindServer;
  span.name.reserve(method.size() + 1 + route.size());
  span.name.append(known ? method : "HTTP");  // semconv: "{method} {http.route}"
  if (!route.empty()) span.name.append(" ").append(route);
  span.start_unix_nano = start;
  span.end_unix_nano = start + static_cast<uint64_t>(std::max<int64_t>(0, elapsed.count()));
  span.trace_state = slot.trace_state;

  auto& a = span.attributes;
  a.reserve(16);
  a.push_back({"http.request.method", std::string(known ? method : "_OTHER")});
  if (!known) a.push_back({"http.request.method_original", std::string(method)});
  a.push_back({"url.path", std::string(req.path())});
  a.push_back({"url.scheme", std::string("http")});
  if (!route.empty()) a.push_back({"http.route", std::string(route)});
  a.push_back({"http.response.status_code", int64_t{status}});
  add_server_address(a, req.header("host"));
  if (auto ip = ex.context().client_ip(); !ip.empty())
    a.push_back({"client.address", std::string(ip)});
  if (auto ua = req.header("user-agent"); !ua.empty())
    a.push_back({"user_agent.original", std::string(ua)});
  a.push_back({"network.protocol.version", std::string(req.version() == 10 ? "1.0" : "1.1")});
  if (auto id = ex.context().request_id(); !id.empty())
    a.push_back({"sluice.request_id", std::string(id)});
  if (auto by = ex.answered_by(); !by.empty()) a.push_back({"sluice.answered_by", std::string(by)});
  if (auto d = ex.detail(); !d.empty()) a.push_back({"sluice.detail", std::string(d)});
  if (auto up = ex.upstream(); !up.empty()) {
    a.push_back({"sluice.upstream", std::string(up)});
    a.push_back({"sluice.upstream_latency_ms",
                 std::chrono::duration<double, std::milli>(ex.upstream_latency()).count()});
  }
  if (status >= 500) {
    span.status_code = kStatusError;
    a.push_back({"error.type", std::to_string(status)});
    if (!ex.detail().empty()) span.status_message = std::string(ex.detail());
  }

  if (per_middleware_spans_ && ex.chain() != nullptr) {
    // Children laid end to end in chain order, each as long as that middleware's self time
    // (pre_handle + post_handle): the lengths are measured, the positions are not.
    const auto& active = ex.chain()->active();
    uint64_t at = start;
    for (std::size_t i = 0; i < active.size(); ++i) {
      const auto self = ex.middleware_time(i);
      if (self.count() <= 0) continue;  // not entered
      SpanData child;
      child.trace_id = span.trace_id;
      child.span_id = random_span_id();
      child.parent_span_id = span.span_id;
      child.kind = kSpanKindInternal;
      child.name = std::string(active[i]->name());
      child.start_unix_nano = at;
      at += static_cast<uint64_t>(self.count());
      child.end_unix_nano = at;
      child.attributes.push_back({"sluice.middleware.type", std::string(active[i]->type())});
      child.attributes.push_back({"sluice.middleware.self_time_ns", int64_t{self.count()}});
      if (ex.answered_by() == active[i]->name())
        child.attributes.push_back({"sluice.answered", true});
      exporter_->enqueue(std::move(child));
    }
  }
  exporter_->enqueue(std::move(span));
}

}  // namespace sluice::observe
