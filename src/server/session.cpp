#include "server/session.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace sluice::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;

Session::Session(Server& server, int worker, asio::ip::tcp::socket socket)
    : server_(server),
      worker_(worker),
      stream_(std::move(socket)),
      timer_(stream_.get_executor()),
      exchange_(*this, Request(request_), Response(response_)),
      dispatch_state_(server.dispatcher().make_state()) {
  error_code ec;
  auto endpoint = stream_.socket().remote_endpoint(ec);
  if (!ec) client_ip_ = endpoint.address().to_string();
  stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  server_.session_opened(worker_, this);
}

Session::~Session() {
  server_.session_closed(worker_, this);
}

void Session::start() {
  wait_for_request();
}

void Session::post(std::function<void()> fn) {
  asio::post(stream_.get_executor(), std::move(fn));
}

void Session::post_after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(stream_.get_executor(), delay);
  timer->async_wait([timer, fn = std::move(fn)](error_code) { fn(); });
}

// Between requests the connection may idle for idle_timeout; once the first byte of a request
// arrives the headers must be complete within header_timeout (no slowloris on the idle budget).
void Session::wait_for_request() {
  if (closed_) return;
  if (closing_ || server_.draining()) return close();
  if (buffer_.size() > 0) return read_header();
  stream_.expires_after(server_.limits().idle_timeout);
  stream_.async_read_some(buffer_.prepare(4096), [self = self()](error_code ec, std::size_t n) {
    if (ec) return self->on_read_error(ec, false);
    self->buffer_.commit(n);
    self->read_header();
  });
}

void Session::read_header() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(server_.limits().max_header_bytes));
  parser_->body_limit(server_.limits().max_body_bytes);
  arm_timer(server_.limits().header_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = self()](error_code ec, std::size_t) { self->on_header(ec); });
}

// Header and body deadlines use their own timer rather than the stream's expiry: an expired
// tcp_stream closes the socket, and a client that was too slow still deserves its 408.
void Session::arm_timer(std::chrono::milliseconds timeout) {
  stream_.expires_never();
  timed_out_ = false;
  timer_.expires_after(timeout);
  timer_.async_wait([self = self()](error_code ec) {
    if (ec) return;
    self->timed_out_ = true;
    error_code ignored;
    self->stream_.socket().cancel(ignored);
  });
}

void Session::on_header(error_code ec) {
  timer_.cancel();
  if (ec) return on_read_error(ec, true);
  if (const char* problem = check_framing(); problem[0] != '\0') {
    return reject(400, "bad_request", problem);
  }
  auto& header = parser_->get();
  auto expect = header[http::field::expect];
  if (!expect.empty()) {
    if (!beast::iequals(expect, "100-continue")) {
      return reject(417, "expectation_failed", "only 100-continue is supported");
    }
    if (!parser_->is_done()) {
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                        [self = self()](error_code wec, std::size_t) {
                          if (wec) return self->close();
                          self->read_body();
                        });
      return;
    }
  }
  read_body();
}

void Session::read_body() {
  if (parser_->is_done()) return on_body({});
  arm_timer(server_.limits().body_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = self()](error_code ec, std::size_t) { self->on_body(ec); });
}

void Session::on_body(error_code ec) {
  timer_.cancel();
  if (ec) return on_read_error(ec, true);
  static_cast<http::request<http::string_body>&>(request_) = parser_->release();
  parser_.reset();
  dispatch();
}

void Session::on_read_error(error_code ec, bool partial) {
  if (ec == http::error::header_limit) {
    return reject(431, "header_too_large", "request headers exceed the limit");
  }
  if (ec == http::error::body_limit) {
    return reject(413, "body_too_large", "request body exceeds the limit");
  }
  if (ec == beast::error::timeout || (timed_out_ && ec == asio::error::operation_aborted)) {
    if (partial || buffer_.size() > 0) return reject(408, "request_timeout", "request timed out");
    return close();
  }
  if (ec.category() == error_code(http::error::end_of_stream).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return reject(400, "bad_request", "malformed HTTP request");
  }
  close();
}

// Beast's parser accepts some framings that a proxy must refuse (request smuggling).
const char* Session::check_framing() const {
  const auto& h = parser_->get();
  if (h.version() != 11 && h.version() != 10) return "unsupported HTTP version";
  const bool has_te = h.find(http::field::transfer_encoding) != h.end();
  const bool has_cl = h.find(http::field::content_length) != h.end();
  if (has_te && has_cl) return "both Transfer-Encoding and Content-Length";
  if (has_te && h.version() == 10) return "Transfer-Encoding in HTTP/1.0";
  if (has_te && !beast::iequals(h[http::field::transfer_encoding], "chunked")) {
    return "unsupported Transfer-Encoding";
  }
  if (h.count(http::field::content_length) > 1) return "repeated Content-Length";
  const auto hosts = h.count(http::field::host);
  if (hosts > 1) return "repeated Host header";
  if (hosts == 0 && h.version() == 11) return "missing Host header";
  if (h.target().empty() ||
      (h.target()[0] != '/' && h.target() != "*" && h.method() != http::verb::connect &&
       !h.target().starts_with("http://") && !h.target().starts_with("https://"))) {
    return "invalid request target";
  }
  return "";
}

void Session::dispatch() {
  busy_ = true;
  head_request_ = request_.method() == http::verb::head;
  static_cast<http::response<http::string_body>&>(response_) = {};
  response_.version(request_.version());
  exchange_.reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  exchange_.context().set_client_ip(client_ip_);
  exchange_.set_bytes_in(request_.body().size());
  server_.dispatcher().dispatch(exchange_, dispatch_state_.get(), [this] {
    write_response(request_.keep_alive() && !closing_ && !server_.draining());
  });
}

void Session::write_response(bool keep_alive) {
  if (closed_ || exchange_.cancelled()) return close();
  response_.keep_alive(keep_alive);
  response_.set(http::field::server, "sluice");
  if (head_request_) {
    response_.content_length(response_.body().size());
    response_.body().clear();
  } else {
    response_.prepare_payload();
  }
  http::async_write(stream_, response_, [self = self(), keep_alive](error_code ec, std::size_t) {
    self->busy_ = false;
    if (ec || !keep_alive) return self->close();
    self->wait_for_request();
  });
}

// Answers a request that never reached the dispatcher, then closes the connection: after a
// framing or limit error the rest of the byte stream cannot be trusted.
void Session::reject(int status, std::string_view error, std::string_view message) {
  busy_ = true;
  closing_ = true;
  head_request_ = false;
  stream_.expires_after(server_.limits().header_timeout);
  static_cast<http::response<http::string_body>&>(response_) = {};
  response_.version(11);
  exchange_.reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  exchange_.context().set_request_id(generate_request_id());
  exchange_.answer_error(status, error, message);
  spdlog::debug("{}: {} from {}: {}", server_.name(), status, client_ip_, message);
  write_response(false);
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  error_code ec;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  stream_.socket().close(ec);
}

void Session::close_if_idle() {
  closing_ = true;
  if (!busy_) close();
}

}  // namespace sluice::server
