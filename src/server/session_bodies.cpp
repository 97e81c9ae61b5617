// Session, streamed bodies both ways: a request body larger than the server buffers is read
// piece by piece as the handler asks (back-pressure), and a streamed response body is written
// piece by piece. The raw bytes of an upgraded connection: session_tunnel.cpp.
#include <boost/beast/http/error.hpp>

#include "core/body_parsing.hpp"
#include "server/session.hpp"

namespace sluice::server {

namespace http = boost::beast::http;

std::optional<std::uint64_t> Session::RequestBody::length() const {
  if (!session_.parser_) return std::nullopt;
  auto cl = session_.parser_->content_length();
  return cl ? std::optional<std::uint64_t>(*cl) : std::nullopt;
}

// A handler reads the next piece of a streamed body: the buffered first piece, then what the
// socket gives, at most buffer_body_bytes at a time. The socket is read only on demand, so a
// slow upstream slows the client down instead of filling memory.
void Session::read_body_piece(BodyStream::ReadFn fn) {
  if (!streamed() || closed_ || body_reader_) return fn({.failed = true, .status = 400});
  if (body_read_ == BodyRead::kFirstPiece) {
    move_to(BodyRead::kStreaming);
    return fn({.data = body_});
  }
  if (body_read_ == BodyRead::kEnded) return fn({.last = true});
  body_.clear();
  body_reader_ = std::move(fn);
  continue_body_piece();
}

void Session::continue_body_piece() {
  error_code ec;
  const auto status =
      detail::put_body(*parser_, buffer_, body_, server_.limits().buffer_body_bytes, ec);
  if (status == detail::body_status::error) {
    closing_ = true;
    return fail_body_piece(ec == http::error::body_limit ? 413 : 400);
  }
  if (status == detail::body_status::need_more && body_.empty()) {
    deadline_ = std::chrono::steady_clock::now() + server_.limits().body_timeout;
    return read();
  }
  deadline_ = SteadyTime::max();
  const bool last = status == detail::body_status::done;
  if (last) move_to(BodyRead::kEnded);
  drive().set_bytes_in(exchange_.bytes_in() + body_.size());
  hand_body_piece({.data = body_, .last = last});
}

// Gives a piece to the handler's pending read (which may start the next read).
void Session::hand_body_piece(BodyPiece piece) {
  auto fn = std::move(body_reader_);
  body_reader_ = nullptr;
  fn(piece);
}

void Session::fail_body_piece(int status) {
  deadline_ = SteadyTime::max();
  hand_body_piece({.failed = true, .status = status});
}

// A streamed response body: one piece from the handler's stream, written, then the next. The
// stream is read only when the client has taken the previous piece (back-pressure).
void Session::write_body_piece(bool keep_alive) {
  if (closed_) return;
  deadline_ = SteadyTime::max();  // the handler's stream has its own timeouts
  auto stream = out_stream_;      // alive until read() returns, whatever the piece says
  stream->read(
      [self = self(), keep_alive](BodyPiece piece) { self->on_body_piece(piece, keep_alive); });
}

void Session::on_body_piece(BodyPiece piece, bool keep_alive) {
  if (closed_) return;
  if (piece.failed) {
    // The head is out: only an abort tells the client that the body is incomplete.
    out_stream_.reset();
    return reset();
  }
  const auto buffers =
      detail::body_piece_buffers(piece.data, piece.last, out_chunked_, chunk_head_);
  deadline_ = std::chrono::steady_clock::now() + server_.limits().body_timeout;
  const bool last = piece.last;
  async_write_all(buffers, [self = self(), keep_alive, last](error_code ec, std::size_t) {
    if (ec || last) return self->end_response(ec, keep_alive);
    self->write_body_piece(keep_alive);
  });
}

}  // namespace sluice::server
