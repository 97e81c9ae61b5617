// UpstreamCall, part two: bodies that do not fit in memory — a streamed request body sent
// piece by piece (with the answer read meanwhile), and a large answer handed on as a stream.
#include <boost/asio/write.hpp>

#include "core/body_parsing.hpp"
#include "upstream/upstream_call.hpp"
#include "upstream/upstream_call_internal.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;

// A streamed request body: the next piece from the client, then written upstream.
void UpstreamCall::send_body_piece() {
  upload(Upload::kBody);
  arm(std::nullopt, Wait::kTry);  // the client's pace is the server's body_timeout's business
  request_stream_->read(
      [self = shared_from_this()](BodyPiece piece) { self->on_body_piece(piece); });
}

void UpstreamCall::on_body_piece(BodyPiece piece) {
  if (!trying()) return;
  if (piece.failed) {
    // The client stalled, sent too much or went away: nothing to answer upstream.
    end_try(false);
    ex_->answer_error(piece.status,
                      piece.status == 408   ? "request_timeout"
                      : piece.status == 413 ? "body_too_large"
                                            : "bad_request",
                      "the request body could not be read to its end");
    return finish();
  }
  arm(cluster_.clock().now() + idle_timeout(), Wait::kTry);  // progress: the idle wait restarts
  const auto wire =
      detail::body_piece_buffers(piece.data, piece.last, request_.chunked, chunk_head_);
  conn_->write(wire, [self = shared_from_this(), last = piece.last](error_code ec, std::size_t) {
    if (!self->trying()) return;
    if (ec) return self->on_upload_error(ec);
    if (!last) return self->send_body_piece();
    self->body_sent();
  });
}

// A piece of the body could not be written: the upstream closed or reset the connection. The
// outstanding read decides what the client gets: an answer the upstream sent first, else (its
// error) a 502.
void UpstreamCall::on_upload_error(error_code ec) {
  if (!reading_answer_) return on_io_error(ec);
  // After a timeout both operations fail; the read reports it (re-arming would clear the mark).
  if (!timed_out_) arm(cluster_.clock().now() + idle_timeout(), Wait::kTry);
}

// The whole streamed body went out: the request's timeouts start now.
void UpstreamCall::body_sent() {
  upload(Upload::kSent);
  const auto now = cluster_.clock().now();
  deadline_ = ex_->context().deadline();
  if (route_->timeout.count() > 0) deadline_ = earliest(deadline_, now + route_->timeout);
  try_deadline_ = deadline_;
  if (cluster_.config().per_try_timeout.count() > 0)
    try_deadline_ = earliest(try_deadline_, now + cluster_.config().per_try_timeout);
  arm(try_deadline_, Wait::kTry);
  if (!reading_answer_) wait_response();
}

std::optional<std::uint64_t> UpstreamCall::ResponseBody::length() const {
  if (!call_.parser_) return std::nullopt;
  auto cl = call_.parser_->content_length();
  return cl ? std::optional<std::uint64_t>(*cl) : std::nullopt;
}

// The client reads the next piece of a streamed answer: first what was buffered, then what the
// upstream sends, read only now (the client's pace sets the upstream's).
void UpstreamCall::read_response_piece(BodyStream::ReadFn fn) {
  if (piece_pending_) {
    piece_pending_ = false;
    return fn({.data = response_body_});
  }
  if (phase_ != Phase::kStreamingAnswer || !conn_ || piece_reader_)
    return fn({.failed = true, .status = 502});
  response_body_.clear();
  piece_reader_ = std::move(fn);
  continue_response_piece();
}

void UpstreamCall::continue_response_piece() {
  error_code ec;
  const auto status = detail::put_body(*parser_, conn_->buffer, response_body_, kPieceBytes, ec);
  if (status == detail::body_status::error)
    return end_response_stream({.failed = true, .status = 502});
  if (status == detail::body_status::need_more && response_body_.empty()) {
    arm(cluster_.clock().now() + idle_timeout(), Wait::kTry);
    return wait_response();
  }
  const bool last = status == detail::body_status::done;
  arm(std::nullopt, Wait::kTry);  // a slow client is the server's body_timeout's business
  if (last) {
    enter(Phase::kAnswered);
    end_try(reusable());
  }
  hand_piece({.data = response_body_, .last = last});
}

// Gives a piece to the client's pending read, if there is one (it may start the next read).
void UpstreamCall::hand_piece(BodyPiece piece) {
  if (!piece_reader_) return;
  auto fn = std::move(piece_reader_);
  piece_reader_ = nullptr;
  fn(piece);
}

// The upstream failed (or timed out) in the middle of a streamed answer: the client's read
// fails, and the client connection is aborted (its head is already out).
void UpstreamCall::end_response_stream(BodyPiece piece) {
  enter(Phase::kAnswered);
  if (endpoint_ >= 0)
    cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  end_try(false);
  hand_piece(piece);
}

}  // namespace sluice::upstream
