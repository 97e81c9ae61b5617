// Session, answering: the response head serialized by hand, the response written (with its
// body in one gather write, or its head before a streamed body or a tunnel), the next request
// begun after it, and reject() for a request that never reached the dispatcher. The streamed
// body's pieces: session_bodies.cpp.
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/post.hpp>
#include <charconv>
#include <cstring>

#include "net/eager_write.hpp"
#include "server/connection_control.hpp"
#include "server/http_date.hpp"
#include "server/session.hpp"

namespace sluice::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;

namespace {
// Writes into a buffer sized beforehand: plain copies, no capacity check per piece (the
// std::string appends were a third of the head's cost, callgrind).
struct HeadWriter {
  char* at;
  void put(const char* text, std::size_t n) {
    std::memcpy(at, text, n);
    at += n;
  }
  void put(beast::string_view text) { put(text.data(), text.size()); }
  template <std::size_t N>
  void literal(const char (&text)[N]) {
    put(text, N - 1);
  }
  void number(std::uint64_t v) { at = std::to_chars(at, at + 20, v).ptr; }
};

// Framing fields are the server's: the handler's are left out.
bool framing_field(http::field name) {
  switch (name) {
    case http::field::content_length:
    case http::field::transfer_encoding:
    case http::field::connection:
    case http::field::keep_alive:
      return true;
    default:
      return false;
  }
}
}  // namespace

// The response head, written by hand: status line, the handler's fields (without the framing
// fields, which the server owns), Server, Date, Content-Length and Connection. One pass
// measures (an upper bound), one resize, one pass copies.
void Session::serialize_head(bool keep_alive, bool with_body) {
  const unsigned status = response_.result_int();
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  bool has_server = false;
  bool has_date = false;  // one Date only (RFC 9110 6.6.1); e.g. an upstream's, passed on
  std::size_t size = 9 + 20 + 1 + reason.size() + 2;
  detail::for_each_field(response_,
                         [&](http::field code, std::string_view name, std::string_view value) {
                           if (framing_field(code)) return;
                           has_server = has_server || code == http::field::server;
                           has_date = has_date || code == http::field::date;
                           size += name.size() + value.size() + 4;
                         });
  const std::string_view date = has_date ? std::string_view() : http_date_now();
  // A HEAD answer from an upstream has no body but says how long the body would be.
  beast::string_view declared_length;
  if (with_body && !out_stream_ && head_request_ && response_.body().empty()) {
    auto declared = response_.find(http::field::content_length);
    if (declared != response_.end()) declared_length = declared->value();
  }
  // Server, Date, the framing field (at most "Transfer-Encoding: chunked" or a 20-digit
  // Content-Length), Connection and the blank line.
  size += 16 + 8 + date.size() + 40 + declared_length.size() + 24 + 2;
  head_.resize(size);
  HeadWriter w{head_.data()};
  if (response_.version() == 10)
    w.literal("HTTP/1.0 ");
  else
    w.literal("HTTP/1.1 ");
  w.number(status);
  w.literal(" ");
  w.put(reason);
  w.literal("\r\n");
  detail::for_each_field(response_,
                         [&](http::field code, std::string_view name, std::string_view value) {
                           if (framing_field(code)) return;
                           w.put(name.data(), name.size());
                           w.literal(": ");
                           w.put(value.data(), value.size());
                           w.literal("\r\n");
                         });
  if (!has_server) w.literal("Server: sluice\r\n");
  if (!has_date) {
    w.literal("Date: ");
    w.put(date.data(), date.size());
    w.literal("\r\n");
  }
  if (with_body && out_stream_) {
    if (out_chunked_) {
      w.literal("Transfer-Encoding: chunked\r\n");
    } else if (auto length = out_stream_->length()) {
      w.literal("Content-Length: ");
      w.number(*length);
      w.literal("\r\n");
    }  // else HTTP/1.0 without a length: the body ends when the connection closes
  } else if (with_body) {
    w.literal("Content-Length: ");
    if (!declared_length.empty())
      w.put(declared_length);
    else
      w.number(response_.body().size());
    w.literal("\r\n");
  }
  if (upgrade_ == Upgrade::kTunnel)
    w.literal("Connection: Upgrade\r\n");
  else if (!keep_alive)
    w.literal("Connection: close\r\n");
  else if (response_.version() == 10)
    w.literal("Connection: keep-alive\r\n");
  w.literal("\r\n");
  head_.resize(static_cast<std::size_t>(w.at - head_.data()));
}

void Session::write_response(bool keep_alive) {
  if (closed_ || exchange_.cancelled()) return close();
  if (exchange_.context().get<ResetConnection>() != nullptr) return reset();
  phase_ = Phase::kResponding;
  const unsigned status = response_.result_int();
  const bool with_body = !(status < 200 || status == 204 || status == 304);
  // A streamed request body that the handler did not read to its end leaves the connection
  // in the middle of a message: answer, then close.
  if (body_unread()) {
    keep_alive = false;
    linger_on_close_ = true;
  }
  out_stream_ = drive().take_response_body_stream();
  // 101 with a stream for an upgrade request: the connection becomes a tunnel.
  if (status == 101 && upgrade_ == Upgrade::kAsked && out_stream_ != nullptr)
    move_to(Upgrade::kTunnel);
  const bool tunnel = upgrade_ == Upgrade::kTunnel;
  if (tunnel) keep_alive = false;
  if (out_stream_ && !tunnel && (!with_body || head_request_)) out_stream_.reset();
  out_chunked_ = false;
  if (out_stream_ && !tunnel && !out_stream_->length()) {
    if (response_.version() == 11)
      out_chunked_ = true;
    else
      keep_alive = false;
  }
  serialize_head(keep_alive, with_body);
  // The exchange's end, read by the runner just before (or at reset(), for an answer that did
  // not run the chain): a fresh clock read would differ by microseconds.
  const SteadyTime write_deadline = exchange_.finished_at() + server_.limits().body_timeout;
  if (out_stream_) {
    deadline_ = write_deadline;
    async_write_all(asio::buffer(head_), [self = self(), keep_alive](error_code ec, std::size_t) {
      if (ec) return self->end_response(ec, false);
      self->write_body_piece(keep_alive);
    });
    return;
  }
  if (tls_) {
    // One TLS record (and one write) for head and a small body, not two.
    const bool body = with_body && !head_request_;
    const bool joined = body && response_.body().size() <= 16 * 1024;
    if (joined) head_ += response_.body();
    std::array<asio::const_buffer, 2> buffers{
        asio::buffer(head_),
        body && !joined ? asio::buffer(response_.body()) : asio::const_buffer{}};
    deadline_ = write_deadline;
    async_write_all(buffers, [self = self(), keep_alive](error_code ec, std::size_t) {
      self->end_response(ec, keep_alive);
    });
    return;
  }
  std::array<asio::const_buffer, 2> buffers{
      asio::buffer(head_),
      with_body && !head_request_ ? asio::buffer(response_.body()) : asio::const_buffer{}};
  // A client that does not read its response is closed after the body timeout.
  deadline_ = write_deadline;
  net::eager_write(
      socket_, buffers,
      [self = self(), keep_alive](error_code ec) { self->end_response(ec, keep_alive); }, &reads_);
}

void Session::end_response(error_code ec, bool keep_alive) {
  phase_ = Phase::kIdle;  // not busy; begin_request() starts the next one
  watch_wanted_ = false;
  deadline_ = SteadyTime::max();
  out_stream_.reset();
  drive().set_request_body_stream(nullptr);  // they point back at this session
  drive().set_upgrade_stream(nullptr);
  if (!ec && !keep_alive && linger_on_close_ && upgrade_ != Upgrade::kTunnel)
    return close_lingering();
  if (ec || !keep_alive) return close();
  // Pipelined requests answered synchronously would nest one call chain per request: past a
  // few, the next one starts from the scheduler.
  if (sync_depth_ >= 4) {
    asio::post(socket_.get_executor(), [self = self()] { self->begin_request(); });
    return;
  }
  ++sync_depth_;
  begin_request();
  --sync_depth_;
}

// Answers a request that never reached the dispatcher, then closes the connection: after a
// framing or limit error the rest of the byte stream cannot be trusted.
void Session::reject(int status, std::string_view error, std::string_view message) {
  phase_ = Phase::kResponding;
  closing_ = true;
  linger_on_close_ = true;  // e.g. a 413 while the client is still sending the body
  head_request_ = false;
  parser_.reset();
  static_cast<detail::ResponseBase&>(response_) = {};
  response_.extra.clear();
  response_.version(11);
  drive().reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  exchange_.context().set_new_request_id();
  exchange_.answer_error(status, error, message);
  spdlog::debug("{}: {} from {}: {}", server_.name(), status, client_ip_, message);
  write_response(false);
}

}  // namespace sluice::server
