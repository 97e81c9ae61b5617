// Session — one HTTP/1.1 connection: read a request (with the limits), hand it to the
// dispatcher, write the response, repeat while keep-alive holds. Pipelined requests wait in
// the read buffer and are answered in order.
//
// The hot path is written by hand on a plain socket rather than with Beast's composed
// operations: the parser is fed with put() from one read buffer, the response head is
// serialized into a reused string and written with the body in one gather write, and deadlines
// are checked by a per-worker sweep (Server) instead of a timer armed per read. Callgrind showed
// Beast's serializer and type-erased executors costing more than the rest of the request.
//
// TLS: on a listener with a TlsContext, the socket is wrapped in an asio::ssl::stream after the
// optional PROXY header; reads and writes go through it (stream-agnostic helpers below), and
// the plain path keeps its eager writes. The handshake has its own timeout, checked by the sweep.
//
// Bodies: one up to limits.buffer_body_bytes is read whole before dispatch; a larger one is
// dispatched after its first piece and handed to the handler as a BodyStream that reads the
// socket only when the handler asks (back-pressure; memory bounded by one piece). A response
// with a BodyStream is written piece by piece, with Content-Length or chunked.
//
// Files, one per step: session.cpp (the connection's start, the worker's hooks),
// session_read.cpp (reading and checking a request, dispatch), session_respond.cpp (the
// response head and its write, the next request), session_bodies.cpp (streamed bodies both
// ways), session_tunnel.cpp (an upgraded connection's raw bytes), session_close.cpp (close,
// TLS close_notify, lingering close, reset).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cassert>
#include <optional>
#include <string>

#include "core/http_message.hpp"
#include "net/drained_reads/drained_reads.hpp"
#include "server/server.hpp"
#include "server/tls/tls_context.hpp"
#include "sluice/exchange_driver.hpp"

namespace sluice::server {

class Session final : public ExchangeHost {
 public:
  using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp,
                                                  boost::asio::io_context::executor_type>;
  using TlsStream = boost::asio::ssl::stream<Socket&>;

  Session(Server& server, int worker, Socket socket);
  ~Session() override;

  void start();
  // Drain: close now when no request is in progress, otherwise after the current response.
  void close_if_idle();
  // Called by the worker's sweep: cancels a read whose deadline passed; true when it did.
  bool check_deadline(SteadyTime now);

  void post(std::function<void()> fn) override;
  void post_after(std::chrono::nanoseconds delay, std::function<void()> fn) override;
  void on_wait() override;
  bool in_own_thread() const override {
    return const_cast<Socket&>(socket_).get_executor().running_in_this_thread();
  }
  void watch_client();

 private:
  using error_code = boost::system::error_code;
  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  ExchangeDriver drive() { return ExchangeDriver(exchange_); }

  // The request body as a stream, for handlers (sluice/body_stream.hpp).
  class RequestBody final : public BodyStream {
   public:
    explicit RequestBody(Session& s) : session_(s) {}
    void read(ReadFn fn) override { session_.read_body_piece(std::move(fn)); }
    std::optional<std::uint64_t> length() const override;

   private:
    Session& session_;
  };

  // The client's raw bytes after an upgrade request (sluice/exchange.hpp, upgrade_stream()).
  class ClientTunnel final : public BodyStream {
   public:
    explicit ClientTunnel(Session& s) : session_(s) {}
    void read(ReadFn fn) override { session_.read_tunnel_piece(std::move(fn)); }
    std::optional<std::uint64_t> length() const override { return std::nullopt; }

   private:
    Session& session_;
  };

  void begin_request();
  void on_proxy_header();
  void begin_connection();  // after the PROXY header, if any: the TLS handshake, then HTTP
  void on_handshake(error_code ec, std::size_t used);
  void close_tls();
  void read();
  // One read or a whole write, on the TLS stream when there is one. Plain reads skip the recv
  // that would find nothing after a response went out (net/drained_reads/drained_reads.hpp).
  template <class Handler>
  void async_read_some(boost::asio::mutable_buffer buffer, Handler&& handler) {
    if (tls_)
      tls_->async_read_some(buffer, std::forward<Handler>(handler));
    else
      reads_.read_some(socket_, buffer, std::forward<Handler>(handler));
  }
  template <class Buffers, class Handler>
  void async_write_all(const Buffers& buffers, Handler&& handler) {
    if (tls_)
      boost::asio::async_write(*tls_, buffers, std::forward<Handler>(handler));
    else
      boost::asio::async_write(socket_, buffers, std::forward<Handler>(handler));
  }
  void on_read(error_code ec, std::size_t n);
  void parse();
  bool on_header_complete();  // false when the request was rejected
  void parse_body();
  void reject_body(error_code ec);
  void read_body_piece(BodyStream::ReadFn fn);
  void continue_body_piece();
  void fail_body_piece(int status);
  void hand_body_piece(BodyPiece piece);
  void read_tunnel_piece(BodyStream::ReadFn fn);
  void deliver_tunnel_piece();
  void on_read_error(error_code ec);
  const char* check_framing(std::size_t& fields) const;
  void dispatch();
  void write_response(bool keep_alive);
  void serialize_head(bool keep_alive, bool with_body);
  void write_body_piece(bool keep_alive);
  void on_body_piece(BodyPiece piece, bool keep_alive);
  void end_response(error_code ec, bool keep_alive);
  int sync_depth_ = 0;  // nested synchronous request/answer cycles (pipelining), bounded
  void reject(int status, std::string_view error, std::string_view message);
  void close();
  void close_lingering();
  void reset();

  Server& server_;
  int worker_;
  Socket socket_;
  net::DrainedReads reads_;  // plain sockets: TCP_INQ on, and whether the next read must recv
  std::shared_ptr<const TlsContext> tls_context_;  // the listener's when the session began
  std::unique_ptr<TlsStream> tls_;                 // from the handshake on
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::buffer_body,
                                                   detail::FieldAllocator<char>>>
      parser_;
  std::string body_;  // the body being buffered, or the streamed piece the handler holds
  RequestBody request_body_{*this};
  ClientTunnel client_tunnel_{*this};
  BodyStream::ReadFn body_reader_;          // a handler's read waiting for the socket
  std::shared_ptr<BodyStream> out_stream_;  // the response body being written, if streamed
  std::string chunk_head_;                  // "<hex size>\r\n" of the chunk being written
  detail::RequestMessage request_;
  detail::ResponseMessage response_;
  Exchange exchange_;
  std::unique_ptr<DispatchState> dispatch_state_;
  std::string client_ip_;
  std::string head_;  // the serialized response head, reused
  SteadyTime deadline_ = SteadyTime::max();
  SteadyTime parsed_at_{};  // the clock read of the last parse(): deadlines, the request's start

  // Where the connection is. One phase at a time; `closed_` is kept apart, because operations
  // started before close() still complete and must see the phase they were started in.
  //
  //   start ──┬──(proxy_protocol)──► kProxyHeader ──(bad or late header)──► close
  //           │                           │ valid header
  //           ├◄──────────────────────────┘
  //           ├──(TLS listener)──► kHandshake ──(failed or late)──► close
  //           │                        │ done
  //           ├◄───────────────────────┘
  //           ▼
  //   ┌───► kIdle ──(idle_timeout, the client's FIN, drain)──► close
  //   │       │ first byte (now or already buffered: pipelining)
  //   │       ▼
  //   │     kHead ──(bad framing, limits, header_timeout)──► reject() ──┐
  //   │       │ head complete and checked                              │
  //   │       ▼                                                        │
  //   │     kBody ──(malformed, too large, body_timeout)──► reject() ──┤
  //   │       │ body whole, or its first piece (then streamed)         │
  //   │       ▼                                                        │
  //   │   kHandling   the chain and the handler run (busy)             │
  //   │       │ write_response()                                       │
  //   │       ▼                                                        │
  //   │  kResponding  head + body, a streamed body, a 101 tunnel ◄─────┘ (busy)
  //   │       │
  //   └───────┼──(written, keep-alive)
  //           ├──(written, Connection: close, write error)──► close
  //           └──(written; the client may still be sending)──► kLingering
  //                  the client's FIN or linger_timeout ──► close
  //
  // close() and reset() can come in any phase (drain, the deadline sweep, a client gone).
  enum class Phase : std::uint8_t {
    kProxyHeader,  // reading the PROXY protocol header: nothing may be answered yet
    kHandshake,    // the TLS handshake
    kIdle,         // between requests: no byte of the next one yet
    kHead,         // reading a request head
    kBody,         // the head is checked; reading a body to buffer
    kHandling,     // dispatched: the chain and the handler run (a streamed body reads on demand)
    kResponding,   // writing the response, its streamed body or a tunnel
    kLingering,    // answered and half-closed: input is read and dropped
  };
  Phase phase_ = Phase::kIdle;
  bool busy() const { return phase_ == Phase::kHandling || phase_ == Phase::kResponding; }
  bool request_started() const { return phase_ >= Phase::kHead && phase_ <= Phase::kResponding; }
  bool tls_ready() const { return tls_ != nullptr && phase_ > Phase::kHandshake; }

  // The request body's reading, beside the phase (a streamed body is read while the handler
  // runs and while the response is written):
  //
  //   begin_request ──► kWhole   (no body, or read whole before dispatch)
  //                       └──(more than buffer_body_bytes: dispatched after the first piece)──┐
  //                                                                                            ▼
  //                     kEnded ◄──(the last piece read)── kStreaming ◄──(handed)── kFirstPiece
  enum class BodyRead : std::uint8_t {
    kWhole,       // not streamed: body_ (then the request) holds all of it
    kFirstPiece,  // streamed; body_ holds the first piece, not handed to the handler yet
    kStreaming,   // streamed; the socket is read as the handler asks
    kEnded,       // streamed and read to its end: the connection is at a message boundary
  };
  // An upgrade (WebSocket) request, beside the phase:
  //
  //   begin_request ──► kNone ──(GET with Connection: upgrade and Upgrade)──► kAsked
  //                               (the handler answers 101 with a stream)──► kTunnel
  //
  // kAsked and kTunnel read the client's bytes raw (the ClientTunnel stream); kTunnel is the
  // connection's end: raw bytes both ways until either side closes.
  enum class Upgrade : std::uint8_t { kNone, kAsked, kTunnel };
  static constexpr bool legal(BodyRead from, BodyRead to) {
    return to == BodyRead::kWhole || static_cast<int>(to) == static_cast<int>(from) + 1;
  }
  static constexpr bool legal(Upgrade from, Upgrade to) {
    return to == Upgrade::kNone || static_cast<int>(to) == static_cast<int>(from) + 1;
  }
  // The only writers of body_read_ and upgrade_; a move the drawings do not allow is a bug.
  void move_to(BodyRead next) {
    assert(legal(body_read_, next) && "Session: a body step the drawing does not allow");
    body_read_ = next;
  }
  void move_to(Upgrade next) {
    assert(legal(upgrade_, next) && "Session: an upgrade step the drawing does not allow");
    upgrade_ = next;
  }
  bool streamed() const { return body_read_ != BodyRead::kWhole; }
  // A streamed body not read to its end: the socket is the handler's, and the connection is in
  // the middle of a message.
  bool body_unread() const {
    return body_read_ == BodyRead::kFirstPiece || body_read_ == BodyRead::kStreaming;
  }
  bool raw_input() const { return upgrade_ != Upgrade::kNone; }  // reads hand raw bytes on
  BodyRead body_read_ = BodyRead::kWhole;
  Upgrade upgrade_ = Upgrade::kNone;

  // Conditions of the connection, beside the phase: facts, and I/O that is pending.
  bool closed_ = false;
  bool reading_ = false;          // a read is pending on the socket (or the TLS stream)
  bool closing_ = false;          // drain or Connection: close: no request after this one
  bool timed_out_ = false;        // the sweep cancelled the pending operation
  bool watching_ = false;         // waiting for the client to close while a request waits
  bool watch_wanted_ = false;     // a hook waits: the next sweep starts watching the client
  bool linger_on_close_ = false;  // the client may still be sending: close_lingering()

  // Attributes of the current request and its response (set before they are read).
  std::string client_cert_subject_;  // the verified client certificate's (mTLS), else empty
  std::string client_cert_san_;
  bool head_request_ = false;
  bool request_keep_alive_ = false;
  bool out_chunked_ = false;  // the streamed response is written with chunked framing
};

}  // namespace sluice::server
