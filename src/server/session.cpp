#include "server/session.hpp"

#include "core/steady_now.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <charconv>
#include <cstring>

#include "core/body_parsing.hpp"
#include "core/http_text.hpp"
#include "net/eager_write.hpp"
#include "net/tls_half_close.hpp"
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

// A new request on this connection: it may already be in the buffer (pipelining).
void Session::begin_request() {
  if (closed_) return;
  if (closing_ || server_.draining()) return close();
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(server_.limits().max_header_bytes));
  parser_->body_limit(server_.limits().max_body_bytes);
  phase_ = Phase::kIdle;
  linger_on_close_ = false;
  timed_out_ = false;
  move_to(BodyRead::kWhole);
  move_to(Upgrade::kNone);
  body_.clear();
  if (buffer_.size() > 0) return parse();
  // Between requests the connection may idle for idle_timeout; once the first byte of a
  // request arrives, the headers must be complete within header_timeout (no slowloris).
  deadline_ = detail::steady_now() + server_.limits().idle_timeout;
  read();
}

void Session::read() {
  reading_ = true;
  async_read_some(buffer_.prepare(streamed() ? 64 * 1024 : 16 * 1024),
                  [self = self()](error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void Session::on_read(error_code ec, std::size_t n) {
  reading_ = false;
  if (closed_) {  // a read that ended while close_tls() sent its alert: no input is used now
    if (body_reader_) fail_body_piece(400);  // but a waiting reader (a tunnel) learns the end
    return;
  }
  if (phase_ ==
      Phase::kLingering) {  // input after the answer: dropped until the client ends or time is up
    if (ec) return close();
    buffer_.commit(n);
    buffer_.consume(buffer_.size());
    return read();
  }
  if (ec) return on_read_error(ec);
  buffer_.commit(n);
  if (phase_ == Phase::kProxyHeader) return on_proxy_header();
  if (body_reader_) return raw_input() ? deliver_tunnel_piece() : continue_body_piece();
  parse();
}

void Session::parse() {
  // One clock read for this parse: the head's deadline, the body's and the request's start.
  parsed_at_ = detail::steady_now();
  if (phase_ == Phase::kIdle) {  // the first bytes of a request
    phase_ = Phase::kHead;
    deadline_ = parsed_at_ + server_.limits().header_timeout;
  }
  if (phase_ != Phase::kHead) return parse_body();  // the head was checked
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
  phase_ = Phase::kBody;
  std::size_t fields = 0;
  if (const char* problem = check_framing(fields); problem[0] != '\0') {
    reject(400, "bad_request", problem);
    return false;
  }
  if (fields > server_.limits().max_headers) {
    reject(431, "too_many_headers", "the request has more header fields than the limit");
    return false;
  }
  deadline_ = parsed_at_ + server_.limits().body_timeout;
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
      move_to(BodyRead::kFirstPiece);
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
  if (phase_ == Phase::kProxyHeader) {  // no header (in time): nothing to answer
    server_.proxy_header_failed(timed_out_ ? "timeout" : "closed");
    return close();
  }
  if (body_reader_ && raw_input() && ec == asio::error::eof) {
    closing_ = true;  // the client ended its side of the tunnel
    deadline_ = SteadyTime::max();
    return hand_body_piece({.last = true});
  }
  if (body_reader_) {  // the client stalled or went away in the middle of a streamed body
    closing_ = true;
    return fail_body_piece(timed_out_ && ec == asio::error::operation_aborted ? 408 : 400);
  }
  if (timed_out_ && ec == asio::error::operation_aborted) {
    if (request_started()) return reject(408, "request_timeout", "request timed out");
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
  phase_ = Phase::kHandling;
  deadline_ = SteadyTime::max();
  request_keep_alive_ = parser_->keep_alive();         // from the flags the parser already set
  const bool connection_upgrade = parser_->upgrade();  // a `Connection: upgrade` token
  // The header moves out of the parser; a streaming parser goes on reading the body.
  request_.base() = std::move(parser_->get().base());
  request_.body().clear();
  if (!streamed()) {
    request_.body().swap(body_);
    parser_.reset();
  }
  head_request_ = request_.method() == http::verb::head;
  static_cast<detail::ResponseBase&>(response_) = {};
  response_.version(request_.version());
  drive().reset(parsed_at_, std::chrono::system_clock::now());
  exchange_.context().set_client_ip(client_ip_);
  exchange_.context().set_peer_ip(client_ip_);
  if (tls_ready()) exchange_.context().set_tls(true, client_cert_subject_, client_cert_san_);
  drive().set_bytes_in(streamed() ? body_.size() : request_.body().size());
  if (streamed())
    drive().set_request_body_stream(std::shared_ptr<BodyStream>(self(), &request_body_));
  // The parser's flag first: the keyed lookup runs only for the rare upgrade request.
  if (connection_upgrade && !streamed() && request_.method() == http::verb::get &&
      request_.find(http::field::upgrade) != request_.end())
    move_to(Upgrade::kAsked);
  if (raw_input()) drive().set_upgrade_stream(std::shared_ptr<BodyStream>(self(), &client_tunnel_));
  server_.dispatcher().dispatch(exchange_, dispatch_state_.get(), [this] {
    write_response(request_keep_alive_ && !closing_ && !server_.draining());
  });
}

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
  for (const auto& f : response_) {
    if (framing_field(f.name())) continue;
    has_server = has_server || f.name() == http::field::server;
    has_date = has_date || f.name() == http::field::date;
    size += f.name_string().size() + f.value().size() + 4;
  }
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
  for (const auto& f : response_) {
    if (framing_field(f.name())) continue;
    w.put(f.name_string());
    w.literal(": ");
    w.put(f.value());
    w.literal("\r\n");
  }
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
  net::eager_write(socket_, buffers, [self = self(), keep_alive](error_code ec) {
    self->end_response(ec, keep_alive);
  });
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
  response_.version(11);
  drive().reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  exchange_.context().set_new_request_id();
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
