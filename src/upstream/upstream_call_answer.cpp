// Reading the upstream's answer: the fast reader (simple_answer.hpp) or Beast's parser, the
// decision to deliver or retry on its status, and handing the answer to the client.
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

void UpstreamCall::wait_response() {
  reading_answer_ = true;
  conn_->read_some(
      conn_->buffer.prepare(kPieceBytes),
      [self = shared_from_this()](error_code ec, std::size_t n) { self->on_received(ec, n); });
}

void UpstreamCall::on_received(error_code ec, std::size_t n) {
  reading_answer_ = false;
  if (phase_ == Phase::kTunneling) {
    if (ec == asio::error::eof || (ec && tunnel_idle_)) return finish_tunnel({.last = true});
    if (ec) return finish_tunnel({.failed = true, .status = 502});
    tunnel_activity();
    conn_->buffer.commit(n);
    take_buffered_bytes();
    return hand_piece({.data = response_body_});
  }
  if (phase_ != Phase::kTrying && phase_ != Phase::kStreamingAnswer) return;
  if (ec == asio::error::eof && parser_->is_header_done() && parser_->need_eof()) {
    parser_->put_eof(ec);  // a body delimited by the close: complete now
  }
  if (ec) {
    if (phase_ == Phase::kStreamingAnswer)
      return end_response_stream({.failed = true, .status = 502});
    return on_io_error(ec);
  }
  conn_->buffer.commit(n);
  if (phase_ == Phase::kStreamingAnswer) return continue_response_piece();
  parse_response();
}

void UpstreamCall::parse_response() {
  if (!parser_->got_some() && take_simple_answer()) return on_response();
  while (!parser_->is_header_done()) {
    error_code ec;
    conn_->buffer.consume(parser_->put(conn_->buffer.data(), ec));
    if (ec == http::error::need_more) return wait_response();
    if (ec) return on_io_error(ec);
    if (!parser_->is_header_done()) {
      if (conn_->buffer.size() == 0) return wait_response();
      continue;
    }
    const int status = parser_->get().result_int();
    if (status >= 100 && status < 200 && status != 101) {  // interim answers: read on
      prepare_parser(parser_, max_answer_bytes_, request_.method == http::verb::head);
      if (conn_->buffer.size() == 0) return wait_response();
    }
  }
  upstream_keep_alive_ = keeps_alive(parser_->get(), parser_->get().version(),
                                     parser_->keep_alive());  // from the parser's flags
  error_code ec;
  switch (detail::put_body(*parser_, conn_->buffer, response_body_, buffer_answer_bytes_, ec)) {
    case detail::body_status::done:
      return on_response();
    case detail::body_status::full:
      piece_pending_ = true;  // the answer's first piece: deliver() streams the rest
      return on_response();
    case detail::body_status::need_more:
      return wait_response();
    case detail::body_status::error:
      return on_io_error(ec);
  }
}

// The common answer (a whole head and Content-Length body in the buffer) without Beast's parser;
// false leaves the bytes to it.
bool UpstreamCall::take_simple_answer() {
  // A detached call hands every end-to-end field over: Beast's parser keeps them all.
  if (request_.method == http::verb::head || detached()) return false;
  const auto data = conn_->buffer.data();
  const std::string_view bytes(static_cast<const char*>(data.data()), data.size());
  const auto& config = cluster_.config();
  std::uint64_t max_body = config.buffer_response_bytes;
  if (config.max_response_bytes > 0) max_body = std::min(max_body, config.max_response_bytes);
  if (!parse_simple_answer(bytes, max_body, simple_)) return false;
  response_body_.assign(bytes.substr(simple_.head_bytes, simple_.body_bytes));
  conn_->buffer.consume(simple_.head_bytes + simple_.body_bytes);
  upstream_keep_alive_ = simple_.keep_alive;
  simple_read_ = true;
  return true;
}

int UpstreamCall::answer_status() const {
  return simple_read_ ? simple_.status : static_cast<int>(parser_->get().result_int());
}

void UpstreamCall::on_response() {
  const int status = answer_status();
  if (status == 101 && upgrade_.empty() && !detached()) {
    end_try(false);
    return fail(502, "bad_gateway", "the upstream switched protocols without being asked to");
  }
  if (status >= 500)
    cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  else
    cluster_.record_success(static_cast<std::size_t>(endpoint_));
  if (cluster_.retry_on_status(status) && may_retry(false, answer_retry_after())) {
    piece_pending_ = false;
    end_try(reusable());
    return retry();
  }
  deliver();
}

void UpstreamCall::deliver() {
  if (detached()) return deliver_detached();
  const int endpoint = endpoint_;
  auto& out = ex_->response().native();
  detail::flush_extra_fields(out);  // fields set before the answer: replaced with Beast's below
  const unsigned version = out.version();
  const bool keep = reusable();
  if (simple_read_) {  // hop-by-hop fields and Content-Length were left out, Via is in
    apply_simple_answer(simple_, out);
    out.version(version);
    out.body().swap(response_body_);
    const auto now = cluster_.clock().now();  // one read for the pool and the upstream's time
    end_try(keep, now);
    ex_->set_upstream(cluster_.endpoints()[static_cast<std::size_t>(endpoint)]->label,
                      now - started_);
    return finish();
  }
  // The header moves out of the parser; a streaming parser goes on reading the body.
  out.base() = std::move(parser_->get().base());
  out.body().clear();
  Phase next = Phase::kAnswered;
  if (out.result_int() == 101) {  // a WebSocket handshake accepted: tunnel from here on
    next = Phase::kTunneling;
    client_tunnel_ = ex_->upgrade_stream();
    arm(std::nullopt, Wait::kNone);
    tunnel_activity();
    ex_->set_response_body_stream(std::shared_ptr<BodyStream>(shared_from_this(), &tunnel_stream_));
  } else if (piece_pending_) {  // larger than buffer_response_bytes: the body streams
    next = Phase::kStreamingAnswer;
    ex_->set_response_body_stream(
        std::shared_ptr<BodyStream>(shared_from_this(), &response_stream_));
  } else {
    out.body().swap(response_body_);
    end_try(keep);
  }
  out.version(version);
  strip_hop_by_hop(out.base());
  if (next == Phase::kTunneling)
    out.set(http::field::upgrade, upgrade_);  // the session adds Connection
  out.erase(http::field::content_length);     // the server frames the body it writes
  // Via: appended to the upstream's (rare), else one insert without a keyed lookup first. The
  // upstream's Via lines are one list (RFC 9110 §5.3): all of them are kept, sluice's entry last.
  bool has_via = false;
  std::string via;
  for (const auto& f : out) {
    if (f.name() != http::field::via) continue;
    append_list_value(via, {f.value().data(), f.value().size()});
    has_via = true;
  }
  if (!has_via) {
    out.insert(http::field::via, "1.1 sluice");
  } else {
    append_list_value(via, kVia);
    out.set(http::field::via, via);
  }
  ex_->set_upstream(cluster_.endpoints()[static_cast<std::size_t>(endpoint)]->label,
                    cluster_.clock().now() - started_);
  finish(next);
}

}  // namespace sluice::upstream
