// The detached mode of UpstreamCall (detached_call.hpp): its requests (a copy of the client's,
// or a made-up one), its answer handed to a callback, and its ends.
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/http_message.hpp"
#include "sluice/http.hpp"
#include "upstream/detached_call.hpp"
#include "upstream/upstream_call.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
// A middleware wants the whole answer; larger ones fail (as "read: body limit exceeded").
constexpr std::uint64_t kMaxDetachedAnswer = 8 * 1024 * 1024;
}  // namespace

UpstreamCall::UpstreamCall(std::shared_ptr<const ProxyRoute> route, int endpoint,
                           UpstreamRequest request, asio::io_context& io,
                           std::function<void(DetachedResult)> done)
    : route_(std::move(route)),
      cluster_(*route_->cluster),
      ex_(nullptr),
      done_(std::move(done)),
      fixed_endpoint_(endpoint),
      max_answer_bytes_(kMaxDetachedAnswer),
      buffer_answer_bytes_(kMaxDetachedAnswer + 1),  // never streamed: the limit fails first
      io_(io),
      request_(std::move(request)) {
  use_deadlines();
}

void UpstreamCall::hand_over(DetachedResult result) {
  if (!trying()) return;
  enter(Phase::kAnswered);
  end_try(false);
  auto done = std::move(done_);
  done(std::move(result));
}

void UpstreamCall::give_up(std::string why, bool timed_out) {
  DetachedResult r;
  r.timed_out = timed_out;
  r.error = timed_out ? "timed out" : std::move(why);
  hand_over(std::move(r));
}

void UpstreamCall::deliver_detached() {
  const bool keep = reusable();
  auto& msg = parser_->get();
  DetachedResult r;
  r.ok = true;
  r.status = static_cast<int>(msg.result_int());
  strip_hop_by_hop(msg.base());
  for (const auto& f : msg) {
    if (f.name() != http::field::content_length) r.headers.emplace_back(f.name_string(), f.value());
  }
  r.body = std::move(response_body_);
  end_try(keep);  // back to the pool after a complete keep-alive answer
  hand_over(std::move(r));
}

namespace {

// The prepared message as UpstreamCall sends it: Host apart (the route's host_rewrite).
UpstreamRequest to_upstream_request(const http::request<http::string_body>& message) {
  UpstreamRequest out;
  out.method = message.method();
  out.method_text = std::string(message.method_string());
  out.target = std::string(message.target());
  for (const auto& f : message) {
    if (f.name() == http::field::host) continue;
    out.fields.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
  }
  out.body = message.body();
  return out;
}

std::function<void()> start(asio::io_context& io, const DetachedTarget& to,
                            http::request<http::string_body>& message,
                            std::chrono::milliseconds timeout,
                            std::function<void(DetachedResult)> done) {
  const std::string host = to.host + ":" + to.port;
  message.set(http::field::host, host);
  message.keep_alive(to.cluster->pooled());  // a fixed endpoint: a fresh connection, closed after
  message.prepare_payload();
  auto route = std::make_shared<ProxyRoute>();
  route->cluster = to.cluster;
  route->forwarding.host_rewrite = host;
  route->timeout = timeout;
  auto call = std::make_shared<UpstreamCall>(std::move(route), to.endpoint < 0 ? 0 : to.endpoint,
                                             to_upstream_request(message), io, std::move(done));
  call->start();
  std::weak_ptr<UpstreamCall> weak = call;
  return [weak] {
    if (auto c = weak.lock()) c->cancel();
  };
}

}  // namespace

std::function<void()> start_detached_copy(asio::io_context& io, const DetachedTarget& to,
                                          const Request& request, std::chrono::milliseconds timeout,
                                          std::function<void(DetachedResult)> done) {
  http::request<http::string_body> out;
  const auto& in = request.native();
  out.method_string(in.method_string());
  out.target(in.target());
  out.version(11);
  detail::for_each_field(in, [&](http::field code, std::string_view name, std::string_view value) {
    out.insert(code, {name.data(), name.size()}, {value.data(), value.size()});
  });
  strip_hop_by_hop(out);  // Connection and what it names, Proxy-*, TE, ...
  out.erase(http::field::content_length);
  out.body() = in.body();
  return start(io, to, out, timeout, std::move(done));
}

std::function<void()> start_detached_call(asio::io_context& io, const DetachedTarget& to,
                                          const OutgoingRequest& request,
                                          std::chrono::milliseconds timeout,
                                          std::function<void(DetachedResult)> done) {
  http::request<http::string_body> out;
  out.method_string(request.method);
  out.target(request.target);
  out.version(11);
  for (const auto& [name, value] : request.headers)
    out.insert(name, value);
  return start(io, to, out, timeout, std::move(done));
}

DetachedTarget DetachedTarget::fixed(const std::string& text, const Clock& clock,
                                     std::string& error) {
  DetachedTarget target;
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    error = "must be host:port, got \"" + text + "\"";
    return target;
  }
  target.cluster = Cluster::fixed_endpoint(text, clock, error);
  if (!target.cluster) return target;
  target.host = text.substr(0, colon);
  target.port = text.substr(colon + 1);
  target.endpoint = 0;
  return target;
}

}  // namespace sluice::upstream
