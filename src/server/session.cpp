#include "server/session.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <charconv>

#include "core/body_parsing.hpp"
#include "core/eager_write.hpp"
#include "core/http_text.hpp"
#include "server/connection_control.hpp"
#include "server/http_date.hpp"
#include "server/proxy_protocol.hpp"

namespace sluice::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
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
  head_.reserve(512);
  server_.session_opened(worker_, this);
}

Session::~Session() {
  server_.session_closed(worker_, this);
}

void Session::start() {
  if (server_.options().proxy_protocol) {
    proxy_header_pending_ = true;
    deadline_ = std::chrono::steady_clock::now() + server_.limits().header_timeout;
    return read();
  }
  begin_connection();
}

void Session::begin_connection() {
  if (!tls_context_) return begin_request();
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
  tls_ready_ = true;
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
  proxy_header_pending_ = false;
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
  if (watching_ || closed_ || !busy_ || (streaming_ && !body_done_)) return;
  watching_ = true;
  socket_.async_wait(Socket::wait_read, [self = self()](error_code ec) {
    self->watching_ = false;
    if (ec || self->closed_ || !self->busy_) return;
    char byte;
    const auto n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      self->closing_ = true;
      self->drive().cancel();
    }
  });
}

void Session::check_deadline(SteadyTime now) {
  if (watch_wanted_) {
    watch_wanted_ = false;
    if (busy_ && drive().running()) watch_client();
  }
  if (deadline_ <= now && !closed_) {
    timed_out_ = true;
    error_code ignored;
    socket_.cancel(ignored);
  }
}

// A new request on this connection: it may already be in the buffer (pipelining).
void Session::begin_request() {
  if (closed_) return;
  if (closing_ || server_.draining()) return close();
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(server_.limits().max_header_bytes));
  parser_->body_limit(server_.limits().max_body_bytes);
  request_started_ = false;
  header_checked_ = false;
  linger_on_close_ = false;
  timed_out_ = false;
  streaming_ = piece_pending_ = body_done_ = false;
  upgrade_ = tunnel_ = false;
  body_.clear();
  if (buffer_.size() > 0) return parse();
  // Between requests the connection may idle for idle_timeout; once the first byte of a
  // request arrives, the headers must be complete within header_timeout (no slowloris).
  deadline_ = std::chrono::steady_clock::now() + server_.limits().idle_timeout;
  read();
}

void Session::read() {
  reading_ = true;
  async_read_some(buffer_.prepare(streaming_ ? 64 * 1024 : 16 * 1024),
                  [self = self()](error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void Session::on_read(error_code ec, std::size_t n) {
  reading_ = false;
  if (lingering_) {  // input after the answer: dropped until the client ends or time is up
    if (ec) return close();
    buffer_.commit(n);
    buffer_.consume(buffer_.size());
    return read();
  }
  if (ec) return on_read_error(ec);
  buffer_.commit(n);
  if (proxy_header_pending_) return on_proxy_header();
  if (body_reader_) return tunnel_ || upgrade_ ? deliver_tunnel_piece() : continue_body_piece();
  parse();
}

void Session::parse() {
  if (!request_started_) {
    request_started_ = true;
    deadline_ = std::chrono::steady_clock::now() + server_.limits().header_timeout;
  }
  if (header_checked_) return parse_body();
  while (true) {
    error_code ec;
    const auto input = buffer_.data();
    const std::size_t used = parser_->put(input, ec);
    // Beast reads the whole header in the put() that completes it, so `input` holds all of its
    // lines here. Beast unfolds obs-fold silently; a proxy must refuse it (RFC 9112 §5.2), or
    // `Transfer-Encoding:\r\n chunked` frames the body differently from a strict peer.
    const bool folded = !ec && parser_->is_header_done() &&
                        detail::has_folded_line(static_cast<const char*>(input.data()), used);
    buffer_.consume(used);
    if (folded) return reject(400, "bad_request", "obs-fold (a header line continued on the next)");
    if (ec == http::error::need_more) break;
    if (ec == http::error::header_limit) {
      return reject(431, "header_too_large", "request headers exceed the limit");
    }
    if (ec == http::error::body_limit) {
      return reject(413, "body_too_large", "request body exceeds the limit");
    }
    if (ec) return reject(400, "bad_request", "malformed HTTP request");
    if (parser_->is_header_done()) return on_header_complete() ? parse_body() : void();
    if (buffer_.size() == 0) break;
  }
  if (buffer_.size() >= server_.limits().max_header_bytes && !parser_->is_header_done()) {
    return reject(431, "header_too_large", "request headers exceed the limit");
  }
  read();
}

// Headers are complete: framing checks, then 100-continue for a body still to come.
bool Session::on_header_complete() {
  header_checked_ = true;
  std::size_t fields = 0;
  if (const char* problem = check_framing(fields); problem[0] != '\0') {
    reject(400, "bad_request", problem);
    return false;
  }
  if (fields > server_.limits().max_headers) {
    reject(431, "too_many_headers", "the request has more header fields than the limit");
    return false;
  }
  deadline_ = std::chrono::steady_clock::now() + server_.limits().body_timeout;
  const auto& header = parser_->get();
  auto expect = header[http::field::expect];
  if (!expect.empty()) {
    if (!beast::iequals(expect, "100-continue")) {
      reject(417, "expectation_failed", "only 100-continue is supported");
      return false;
    }
    if (!parser_->is_done() && buffer_.size() == 0) {
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      error_code ignored;  // best effort: a client that cannot take it will send the body anyway
      if (tls_)  // a blocking socket under TLS (see the constructor): the record completes
        asio::write(*tls_, asio::buffer(kContinue, sizeof(kContinue) - 1), ignored);
      else
        asio::write(socket_, asio::buffer(kContinue, sizeof(kContinue) - 1), ignored);
    }
  }
  return true;
}

// The body: buffered whole up to buffer_body_bytes; past that, dispatched as a stream whose
// first piece is what was buffered.
void Session::parse_body() {
  if (parser_->is_done()) return dispatch();
  error_code ec;
  switch (detail::put_body(*parser_, buffer_, body_, server_.limits().buffer_body_bytes, ec)) {
    case detail::body_status::done:
      return dispatch();
    case detail::body_status::full:
      streaming_ = piece_pending_ = true;
      return dispatch();
    case detail::body_status::need_more:
      return read();
    case detail::body_status::error:
      return reject_body(ec);
  }
}

void Session::reject_body(error_code ec) {
  if (ec == http::error::body_limit) {
    return reject(413, "body_too_large", "request body exceeds the limit");
  }
  reject(400, "bad_request", "malformed HTTP request body");
}

void Session::on_read_error(error_code ec) {
  if (proxy_header_pending_) {  // no header (in time): nothing to answer
    server_.proxy_header_failed(timed_out_ ? "timeout" : "closed");
    return close();
  }
  if (body_reader_ && (tunnel_ || upgrade_) && ec == asio::error::eof) {
    closing_ = true;  // the client ended its side of the tunnel
    deadline_ = SteadyTime::max();
    return hand_body_piece({.last = true});
  }
  if (body_reader_) {  // the client stalled or went away in the middle of a streamed body
    closing_ = true;
    return fail_body_piece(timed_out_ && ec == asio::error::operation_aborted ? 408 : 400);
  }
  if (timed_out_ && ec == asio::error::operation_aborted) {
    if (request_started_) return reject(408, "request_timeout", "request timed out");
    return close();
  }
  close();  // end of stream, reset, or cancelled by a drain
}

// Beast's parser accepts some framings that a proxy must refuse (request smuggling).
const char* Session::check_framing(std::size_t& fields) const {
  const auto& h = parser_->get();
  if (h.version() != 11 && h.version() != 10) return "unsupported HTTP version";
  // One pass over the fields (a handful), comparing the enum: cheaper than keyed lookups. It
  // also counts them for limits.max_headers.
  std::size_t te = 0, cl = 0, hosts = 0;
  beast::string_view te_value;
  for (const auto& f : h) {
    ++fields;
    switch (f.name()) {
      case http::field::transfer_encoding:
        if (te++ == 0) te_value = f.value();
        break;
      case http::field::content_length:
        ++cl;
        break;
      case http::field::host:
        ++hosts;
        break;
      default:
        break;
    }
  }
  const bool has_te = te > 0;
  if (has_te && cl > 0) return "both Transfer-Encoding and Content-Length";
  if (has_te && h.version() == 10) return "Transfer-Encoding in HTTP/1.0";
  if (has_te && !beast::iequals(te_value, "chunked")) return "unsupported Transfer-Encoding";
  if (cl > 1) return "repeated Content-Length";
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
  deadline_ = SteadyTime::max();
  request_keep_alive_ = parser_->keep_alive();         // from the flags the parser already set
  const bool connection_upgrade = parser_->upgrade();  // a `Connection: upgrade` token
  // The header moves out of the parser; a streaming parser goes on reading the body.
  request_.base() = std::move(parser_->get().base());
  request_.body().clear();
  if (!streaming_) {
    request_.body().swap(body_);
    parser_.reset();
  }
  head_request_ = request_.method() == http::verb::head;
  static_cast<http::response<http::string_body>&>(response_) = {};
  response_.version(request_.version());
  drive().reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  exchange_.context().set_client_ip(client_ip_);
  exchange_.context().set_peer_ip(client_ip_);
  if (tls_ready_) exchange_.context().set_tls(true, client_cert_subject_, client_cert_san_);
  drive().set_bytes_in(streaming_ ? body_.size() : request_.body().size());
  if (streaming_)
    drive().set_request_body_stream(std::shared_ptr<BodyStream>(self(), &request_body_));
  // The parser's flag first: the keyed lookup runs only for the rare upgrade request.
  upgrade_ = connection_upgrade && !streaming_ && request_.method() == http::verb::get &&
             request_.find(http::field::upgrade) != request_.end();
  if (upgrade_) drive().set_upgrade_stream(std::shared_ptr<BodyStream>(self(), &client_tunnel_));
  server_.dispatcher().dispatch(exchange_, dispatch_state_.get(), [this] {
    write_response(request_keep_alive_ && !closing_ && !server_.draining());
  });
}

namespace {
// A literal's length is known at compile time; operator+=(const char*) measures it each call.
template <std::size_t N>
void append_literal(std::string& out, const char (&text)[N]) {
  out.append(text, N - 1);
}

void append_number(std::string& out, std::size_t v) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, end);
}
}  // namespace

// The response head, written by hand: status line, the handler's fields (without the framing
// fields, which the server owns), Server, Date, Content-Length and Connection.
void Session::serialize_head(bool keep_alive, bool with_body) {
  const unsigned status = response_.result_int();
  head_.clear();
  head_ += response_.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_number(head_, status);
  head_ += ' ';
  auto reason = http::obsolete_reason(static_cast<http::status>(status));
  head_.append(reason.data(), reason.size());
  append_literal(head_, "\r\n");
  bool has_server = false;
  bool has_date = false;  // one Date only (RFC 9110 6.6.1)
  for (const auto& f : response_) {
    switch (f.name()) {
      case http::field::content_length:
      case http::field::transfer_encoding:
      case http::field::connection:
      case http::field::keep_alive:
        continue;
      case http::field::server:
        has_server = true;
        break;
      case http::field::date:  // e.g. an upstream's, which the proxy passes on as Envoy does
        has_date = true;
        break;
      default:
        break;
    }
    head_.append(f.name_string().data(), f.name_string().size());
    append_literal(head_, ": ");
    head_.append(f.value().data(), f.value().size());
    append_literal(head_, "\r\n");
  }
  if (!has_server) append_literal(head_, "Server: sluice\r\n");
  if (!has_date) {
    append_literal(head_, "Date: ");
    head_ += http_date_now();
    append_literal(head_, "\r\n");
  }
  if (with_body && out_stream_) {
    if (out_chunked_) {
      append_literal(head_, "Transfer-Encoding: chunked\r\n");
    } else if (auto length = out_stream_->length()) {
      append_literal(head_, "Content-Length: ");
      append_number(head_, *length);
      append_literal(head_, "\r\n");
    }  // else HTTP/1.0 without a length: the body ends when the connection closes
  } else if (with_body) {
    append_literal(head_, "Content-Length: ");
    // A HEAD answer from an upstream has no body but says how long the body would be.
    auto declared = response_.find(http::field::content_length);
    if (head_request_ && response_.body().empty() && declared != response_.end()) {
      head_.append(declared->value().data(), declared->value().size());
    } else {
      append_number(head_, response_.body().size());
    }
    append_literal(head_, "\r\n");
  }
  if (tunnel_)
    append_literal(head_, "Connection: Upgrade\r\n");
  else if (!keep_alive)
    append_literal(head_, "Connection: close\r\n");
  else if (response_.version() == 10)
    append_literal(head_, "Connection: keep-alive\r\n");
  append_literal(head_, "\r\n");
}

void Session::write_response(bool keep_alive) {
  if (closed_ || exchange_.cancelled()) return close();
  if (exchange_.context().get<ResetConnection>() != nullptr) return reset();
  const unsigned status = response_.result_int();
  const bool with_body = !(status < 200 || status == 204 || status == 304);
  // A streamed request body that the handler did not read to its end leaves the connection
  // in the middle of a message: answer, then close.
  if (streaming_ && !body_done_) {
    keep_alive = false;
    linger_on_close_ = true;
  }
  out_stream_ = drive().take_response_body_stream();
  // 101 with a stream for an upgrade request: the connection becomes a tunnel.
  tunnel_ = status == 101 && upgrade_ && out_stream_ != nullptr;
  if (tunnel_) keep_alive = false;
  if (out_stream_ && !tunnel_ && (!with_body || head_request_)) out_stream_.reset();
  out_chunked_ = false;
  if (out_stream_ && !tunnel_ && !out_stream_->length()) {
    if (response_.version() == 11)
      out_chunked_ = true;
    else
      keep_alive = false;
  }
  serialize_head(keep_alive, with_body);
  if (out_stream_) {
    deadline_ = std::chrono::steady_clock::now() + server_.limits().body_timeout;
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
    deadline_ = std::chrono::steady_clock::now() + server_.limits().body_timeout;
    async_write_all(buffers, [self = self(), keep_alive](error_code ec, std::size_t) {
      self->end_response(ec, keep_alive);
    });
    return;
  }
  std::array<asio::const_buffer, 2> buffers{
      asio::buffer(head_),
      with_body && !head_request_ ? asio::buffer(response_.body()) : asio::const_buffer{}};
  // A client that does not read its response is closed after the body timeout.
  deadline_ = std::chrono::steady_clock::now() + server_.limits().body_timeout;
  detail::eager_write(socket_, buffers, [self = self(), keep_alive](error_code ec) {
    self->end_response(ec, keep_alive);
  });
}

void Session::end_response(error_code ec, bool keep_alive) {
  busy_ = false;
  watch_wanted_ = false;
  deadline_ = SteadyTime::max();
  out_stream_.reset();
  drive().set_request_body_stream(nullptr);  // they point back at this session
  drive().set_upgrade_stream(nullptr);
  if (!ec && !keep_alive && linger_on_close_ && !tunnel_) return close_lingering();
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
  busy_ = true;
  closing_ = true;
  linger_on_close_ = true;  // e.g. a 413 while the client is still sending the body
  head_request_ = false;
  parser_.reset();
  static_cast<http::response<http::string_body>&>(response_) = {};
  response_.version(11);
  drive().reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  exchange_.context().set_request_id(generate_request_id());
  exchange_.answer_error(status, error, message);
  spdlog::debug("{}: {} from {}: {}", server_.name(), status, client_ip_, message);
  write_response(false);
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  drive().set_request_body_stream(nullptr);
  drive().set_upgrade_stream(nullptr);
  out_stream_.reset();
  deadline_ = SteadyTime::max();
  // Not during the handshake or a pending read: the stream allows no second operation then.
  if (tls_ready_ && !reading_) return close_tls();
  error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  socket_.close(ec);
}

// TLS ends with a close_notify alert, so a client reading to the end of the stream can tell an
// end from a truncation. The peer's answer is waited for at most a second.
void Session::close_tls() {
  auto timer =
      std::make_shared<asio::steady_timer>(socket_.get_executor(), std::chrono::seconds(1));
  timer->async_wait([self = self()](error_code ec) {
    if (ec != asio::error::operation_aborted) self->socket_.close(ec);
  });
  tls_->async_shutdown([self = self(), timer](error_code) {
    error_code ignored;
    timer->cancel();
    self->socket_.close(ignored);
  });
}

// Closing a socket with unread input makes the kernel send a RST, and a client still sending its
// body (a 413, an upstream's early answer) may then lose the answer it was sent. As nginx's
// lingering close: send FIN, read and drop what still comes, close at the client's FIN, an error,
// or after limits.linger_timeout.
void Session::close_lingering() {
  if (closed_ || lingering_) return;
  lingering_ = true;
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
  busy_ = false;
  deadline_ = SteadyTime::max();
  error_code ec;
  socket_.set_option(asio::socket_base::linger(true, 0), ec);
  socket_.close(ec);
}

void Session::close_if_idle() {
  closing_ = true;
  if (!busy_) close();
}

}  // namespace sluice::server
