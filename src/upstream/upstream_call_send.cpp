// Writing a try's request head (and a buffered body with it); the streamed body is in
// upstream_call_bodies.cpp.
#include "upstream/upstream_call.hpp"

#include <prometheus/counter.h>

#include <array>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <random>

#include "core/body_parsing.hpp"
#include "core/http_message.hpp"
#include "net/eager_write.hpp"
#include "upstream/upstream_call_internal.hpp"
#include "upstream/upstream_faults.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

void UpstreamCall::send() {
  arm(request_stream_ ? std::optional<SteadyTime>(cluster_.clock().now() + idle_timeout())
                      : try_deadline_,
      Wait::kTry);
  prepare_parser(parser_, max_answer_bytes_, request_.method == http::verb::head);
  simple_read_ = false;
  upload(Upload::kHead);
  reading_answer_ = false;
  response_body_.clear();
  serialize_head(
      request_,
      upstream_host(route_->forwarding, *cluster_.endpoints()[static_cast<std::size_t>(endpoint_)],
                    client_host_),
      head_);
  if (conn_->tls) {
    // One TLS record for a small request rather than one for the head and one for the body.
    if (!request_.body.empty() && head_.size() + request_.body.size() <= 16 * 1024) {
      head_.append(request_.body);
      return conn_->write(
          asio::buffer(head_),
          [self = shared_from_this()](error_code ec, std::size_t) { self->on_written(ec); });
    }
    const std::array<asio::const_buffer, 2> wire{asio::buffer(head_), asio::buffer(request_.body)};
    return conn_->write(
        wire, [self = shared_from_this()](error_code ec, std::size_t) { self->on_written(ec); });
  }
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head_), asio::buffer(request_.body)};
  net::eager_write(
      conn_->socket, wire, [self = shared_from_this()](error_code ec) { self->on_written(ec); },
      &conn_->reads);
}

void UpstreamCall::on_written(error_code ec) {
  if (!trying()) return;
  if (ec) return on_io_error(ec);
  if (request_stream_) {
    // The answer is read while the body goes up: an upstream may answer early (a 413, a 401)
    // and stop reading; its answer then reaches the client instead of a 502 for the failed write.
    wait_response();
    return send_body_piece();
  }
  upload(Upload::kSent);
  wait_response();
}

std::chrono::milliseconds UpstreamCall::idle_timeout() const {
  if (cluster_.config().per_try_timeout.count() > 0) return cluster_.config().per_try_timeout;
  if (route_->timeout.count() > 0) return route_->timeout;
  return std::chrono::seconds(60);
}

// An asynchronous read, not a readiness wait: a readiness wait re-arms the descriptor with
// epoll_ctl every time. The read costs at most one speculative recv (EAGAIN when the answer is not
// there yet; docs/ARCHITECTURE.md, "System calls per request").

}  // namespace sluice::upstream
