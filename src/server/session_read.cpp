// Session, reading a request: the next request begins (maybe already buffered: pipelining), the
// socket is read, the head is parsed and checked (framing, limits, 100-continue), a body is
// buffered or its first piece taken, and the exchange is dispatched. Read errors and timeouts
// end here too (a 408, a close). The rest of the session: session.cpp.
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>

#include "core/body_parsing.hpp"
#include "core/http_text.hpp"
#include "core/steady_now.hpp"
#include "server/session.hpp"

namespace sluice::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;

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
  request_.extra.clear();
  request_.body().clear();
  if (!streamed()) {
    request_.body().swap(body_);
    parser_.reset();
  }
  head_request_ = request_.method() == http::verb::head;
  static_cast<detail::ResponseBase&>(response_) = {};
  response_.extra.clear();
  response_.version(request_.version());
  drive().reset(parsed_at_, detail::wall_at(parsed_at_), client_ip_);
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

}  // namespace sluice::server
