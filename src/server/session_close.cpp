// Session, ending a connection: a plain close, TLS's close_notify, the lingering close after an
// answer while the client may still be sending, a reset (RST), and a drain's close when idle.
#include <boost/asio/steady_timer.hpp>

#include "net/tls_half_close.hpp"
#include "server/session.hpp"

namespace sluice::server {

namespace asio = boost::asio;

void Session::close() {
  if (closed_) return;
  closed_ = true;
  drive().set_request_body_stream(nullptr);
  drive().set_upgrade_stream(nullptr);
  out_stream_.reset();
  deadline_ = SteadyTime::max();
  if (tls_ready()) return close_tls();  // not during the handshake: no TLS to end yet
  error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  socket_.close(ec);
}

// TLS ends with a close_notify alert, so a client reading to the end of the stream can tell an
// end from a truncation (a tunnel whose upstream ended, an idle keep-alive connection too). The
// peer's answer is waited for at most a second. With a read pending (a tunnel, a connection
// between requests) only ours is sent (net::tls_half_close) and closing the socket ends the read.
void Session::close_tls() {
  auto timer =
      std::make_shared<asio::steady_timer>(socket_.get_executor(), std::chrono::seconds(1));
  timer->async_wait([self = self()](error_code ec) {
    if (ec != asio::error::operation_aborted) self->socket_.close(ec);
  });
  auto done = [self = self(), timer](error_code) {
    error_code ignored;
    timer->cancel();
    self->socket_.close(ignored);
  };
  if (reading_) return net::tls_half_close(*tls_, socket_, std::move(done));
  tls_->async_shutdown(std::move(done));
}

// Closing a socket with unread input makes the kernel send a RST, and a client still sending its
// body (a 413, an upstream's early answer) may then lose the answer it was sent. As nginx's
// lingering close: send FIN, read and drop what still comes, close at the client's FIN, an error,
// or after limits.linger_timeout.
void Session::close_lingering() {
  if (closed_ || phase_ == Phase::kLingering) return;
  phase_ = Phase::kLingering;
  drive().set_request_body_stream(nullptr);
  drive().set_upgrade_stream(nullptr);
  out_stream_.reset();
  if (body_reader_) fail_body_piece(400);  // a handler still waiting for a piece: none will come
  error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  buffer_.consume(buffer_.size());
  deadline_ = std::chrono::steady_clock::now() + server_.limits().linger_timeout;
  if (!reading_) read();
}

// Drops the connection with a TCP RST (SO_LINGER 0), unanswered: what a crashed peer looks like.
void Session::reset() {
  if (closed_) return;
  closed_ = true;
  drive().set_request_body_stream(nullptr);
  drive().set_upgrade_stream(nullptr);
  out_stream_.reset();
  phase_ = Phase::kIdle;  // not busy (closed_ is what every check looks at first)
  deadline_ = SteadyTime::max();
  error_code ec;
  socket_.set_option(asio::socket_base::linger(true, 0), ec);
  socket_.close(ec);
}

void Session::close_if_idle() {
  closing_ = true;
  if (!busy()) close();
}

}  // namespace sluice::server
