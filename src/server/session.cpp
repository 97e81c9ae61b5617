// Session, the connection's life outside a request: its start (the PROXY header, the TLS
// handshake), the worker's hooks (post, the client watch while a request waits, the deadline
// sweep). One file per step of a request: session_read.cpp (the request in), session_respond.cpp
// (the answer out), session_bodies.cpp (streamed bodies both ways), session_tunnel.cpp (an
// upgraded connection's raw bytes), session_close.cpp (the connection's end).
#include "server/session.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>

#include "server/proxy_protocol.hpp"

namespace sluice::server {

namespace asio = boost::asio;

Session::Session(Server& server, int worker, Socket socket)
    : server_(server),
      worker_(worker),
      socket_(std::move(socket)),
      tls_context_(server.tls_context()),
      exchange_(*this, Request(request_), Response(response_)),
      dispatch_state_(server.dispatcher().make_state()) {
  error_code ec;
  auto endpoint = socket_.remote_endpoint(ec);
  if (!ec) client_ip_ = endpoint.address().to_string();
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  // eager_write: a plain write first. Not under TLS: a non-blocking write could stop in the
  // middle of a record, and the 100-continue write below must then complete.
  if (!tls_context_) socket_.non_blocking(true, ec);
  if (!tls_context_) reads_.enable(socket_);
  head_.reserve(512);
  server_.session_opened(worker_, this);
}

Session::~Session() {
  server_.session_closed(worker_, this);
}

void Session::start() {
  if (server_.options().proxy_protocol) {
    phase_ = Phase::kProxyHeader;
    deadline_ = std::chrono::steady_clock::now() + server_.limits().header_timeout;
    return read();
  }
  begin_connection();
}

void Session::begin_connection() {
  if (!tls_context_) return begin_request();
  phase_ = Phase::kHandshake;
  tls_ = std::make_unique<TlsStream>(socket_, tls_context_->default_context());
  timed_out_ = false;
  deadline_ = std::chrono::steady_clock::now() + tls_context_->handshake_timeout();
  // Bytes read with the PROXY header are the start of the ClientHello.
  tls_->async_handshake(
      asio::ssl::stream_base::server, buffer_.data(),
      [self = self()](error_code ec, std::size_t used) { self->on_handshake(ec, used); });
}

void Session::on_handshake(error_code ec, std::size_t used) {
  if (closed_) return;
  if (!ec && used != buffer_.size()) ec = asio::error::invalid_argument;  // cannot happen
  if (ec) {
    const char* reason = tls_handshake_failure_reason(ec, timed_out_);
    server_.tls_handshake_failed(reason);
    spdlog::debug("{}: TLS handshake with {} failed ({}): {}", server_.name(), client_ip_, reason,
                  ec.message());
    tls_.reset();  // nothing to shut down: close the socket as it is
    return close();
  }
  buffer_.consume(used);
  timed_out_ = false;
  phase_ = Phase::kIdle;  // handshake done: tls_ready() from here on
  server_.tls_handshake_done(SSL_session_reused(tls_->native_handle()) == 1);
  // The verified client certificate (mTLS), read once for all the connection's requests.
  if (X509* cert = SSL_get0_peer_certificate(tls_->native_handle())) {
    client_cert_subject_ = certificate_subject(cert);
    client_cert_san_ = certificate_alt_names(cert);
  }
  begin_request();
}

// The PROXY protocol header names the client; nothing but a valid header may come first, and
// before it no HTTP answer can be sent (the balancer would take it for the client's), so a bad
// or late one closes the connection.
void Session::on_proxy_header() {
  const auto data = buffer_.data();
  const auto header =
      parse_proxy_header(std::string_view(static_cast<const char*>(data.data()), data.size()));
  switch (header.status) {
    case ProxyHeaderStatus::need_more:
      return read();
    case ProxyHeaderStatus::invalid:
      spdlog::debug("{}: PROXY protocol header refused from {}: {}", server_.name(), client_ip_,
                    header.error);
      server_.proxy_header_failed("invalid");
      return close();
    case ProxyHeaderStatus::done:
      break;
  }
  buffer_.consume(header.used);
  phase_ = Phase::kIdle;  // the header is read; begin_connection() goes on
  if (header.source) {
    auto address = *header.source;
    if (address.is_v6() && address.to_v6().is_v4_mapped())
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());  // as the client
    client_ip_ = address.to_string();
  }
  begin_connection();
}

void Session::post(std::function<void()> fn) {
  asio::post(socket_.get_executor(), std::move(fn));
}

void Session::post_after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(socket_.get_executor(), delay);
  timer->async_wait([timer, fn = std::move(fn)](error_code) { fn(); });
}

// While a request waits (a timer, Redis, an upstream), nothing reads the socket; watch it, and
// if the client closed its side, cancel the request so what it started is dropped (499).
// Readable with data means a pipelined request: it is left in the socket for after the answer.
// The watch starts at the worker's next sweep (within 100 ms), not at once: arming it costs an
// epoll_ctl, and most waits (a proxied request) end sooner than that.
void Session::on_wait() {
  watch_wanted_ = true;
}

void Session::watch_client() {
  // A streamed body reads the socket itself and sees the client go away there.
  if (watching_ || closed_ || !busy() || body_unread()) return;
  watching_ = true;
  socket_.async_wait(Socket::wait_read, [self = self()](error_code ec) {
    self->watching_ = false;
    if (ec || self->closed_ || !self->busy()) return;
    char byte;
    const auto n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      self->closing_ = true;
      self->drive().cancel();
    }
  });
}

bool Session::check_deadline(SteadyTime now) {
  if (watch_wanted_) {
    watch_wanted_ = false;
    if (busy() && drive().running()) watch_client();
  }
  if (deadline_ <= now && !closed_) {
    timed_out_ = true;
    error_code ignored;
    socket_.cancel(ignored);
    return true;
  }
  return false;
}

}  // namespace sluice::server
