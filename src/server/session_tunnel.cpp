// Session, an upgraded connection (a WebSocket tunnel through the proxy): the client's raw bytes
// go to the handler as they arrive (the ClientTunnel stream), one piece in flight; the other way
// is the 101's response stream, written by session_bodies.cpp. The client's EOF ends its half
// (session_read.cpp, on_read_error); the tunnel ends the connection (session_respond.cpp).
#include "server/session.hpp"

namespace sluice::server {

// An upgrade request's tunnel, client to handler: whatever bytes arrive, as they arrive.
void Session::read_tunnel_piece(BodyStream::ReadFn fn) {
  if (closed_ || body_reader_) return fn({.failed = true, .status = 400});
  body_reader_ = std::move(fn);
  if (buffer_.size() > 0) return deliver_tunnel_piece();
  read();
}

void Session::deliver_tunnel_piece() {
  body_.assign(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  hand_body_piece({.data = body_});
}

}  // namespace sluice::server
