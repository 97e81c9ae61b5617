// UpstreamCall, part three: a WebSocket tunnel after the upstream's 101. Upstream to client:
// the session reads the tunnel stream. Client to upstream: pumped here, one piece in flight. A
// tunnel lasts until a side closes, a drain, or websocket_idle_timeout without a byte either way
// (then the upstream connection is closed and the client's ends cleanly).
#include <boost/asio/write.hpp>

#include "net/tls_half_close.hpp"
#include "upstream/upstream_call.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;

void UpstreamCall::read_tunnel_piece(BodyStream::ReadFn fn) {
  if (phase_ != Phase::kTunneling || !conn_ || piece_reader_)
    return fn({.failed = true, .status = 502});
  piece_reader_ = std::move(fn);
  if (conn_->buffer.size() == 0) return wait_response();
  take_buffered_bytes();  // bytes that came with the 101
  hand_piece({.data = response_body_});
}

// The raw bytes read so far become the piece the client is sent next.
void UpstreamCall::take_buffered_bytes() {
  response_body_.assign(static_cast<const char*>(conn_->buffer.data().data()),
                        conn_->buffer.size());
  conn_->buffer.consume(conn_->buffer.size());
}

void UpstreamCall::pump_client_to_upstream() {
  client_tunnel_->read([self = shared_from_this()](BodyPiece piece) {
    if (self->phase_ != Phase::kTunneling) return;
    if (piece.failed) return self->end_tunnel();  // the client is gone
    self->tunnel_activity();
    if (piece.last) {          // the client ended its side: so does the upstream connection
      if (self->conn_->tls) {  // close_notify, then FIN; the upstream's side goes on
        // The connection lives until the alert's write completes, whatever ends the tunnel.
        auto& conn = *self->conn_;
        return net::tls_half_close(*conn.tls, conn.socket, [keep = self->conn_](error_code) {});
      }
      error_code ignored;
      self->conn_->socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      return;
    }
    self->conn_->write(asio::buffer(piece.data.data(), piece.data.size()),
                       [self](error_code ec, std::size_t) {
                         if (self->phase_ != Phase::kTunneling) return;
                         if (ec) return self->end_tunnel();
                         self->pump_client_to_upstream();
                       });
  });
}

// Bytes went one way or the other: the idle wait starts again.
void UpstreamCall::tunnel_activity() {
  if (route_->websocket_idle_timeout.count() > 0)
    arm(cluster_.clock().now() + route_->websocket_idle_timeout, Wait::kTunnelIdle);
}

// A side failed: closing the upstream socket ends the pending read, and with it the tunnel.
void UpstreamCall::end_tunnel() {
  if (phase_ != Phase::kTunneling || !conn_) return;
  error_code ignored;
  conn_->socket.close(ignored);
}

void UpstreamCall::finish_tunnel(BodyPiece piece) {
  enter(Phase::kAnswered);
  end_try(false);  // never pooled
  hand_piece(piece);
}

}  // namespace sluice::upstream
