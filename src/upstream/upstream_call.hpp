// UpstreamCall — one proxied request on its worker's io_context: pick an endpoint, take a pooled
// connection or connect, write the request, read the answer, retry when allowed, and answer the
// client (the upstream's response, or a JSON 502/504). Lives in a shared_ptr held by its pending
// I/O; the client going away (Exchange::on_cancel) closes its connection, which is never pooled.
//
//   auto call = std::make_shared<UpstreamCall>(route, ex, ex.defer(),
//   *server::current_io_context()); call->start(); return Decision::wait();
//
// One try:   pick --fault?--> [refused | black hole | status]
//              |--pooled--> write --> read --> answer / retry on status
//              '--connect--(TLS cluster: handshake)--^   (connect or handshake error or
//                                                          timeout: retry or 502/504)
// A retry first waits its backoff (retry_backoff.hpp; the upstream's Retry-After at least) on
// the call's timer, then starts a try on another endpoint when there is one.
// A pooled connection that fails before any byte of the answer arrived is retried once on a
// fresh connection (the upstream closed it between our check and the write).
//
// Bodies: a request body the server streams (larger than limits.buffer_body_bytes) is sent
// piece by piece as the client gives it, and cannot be retried once a piece went out; its
// timeouts start when it has been sent (as Envoy's route timeout does), an idle timeout guards the
// upload. An answer larger than the cluster's buffer_response_bytes is handed to the client as a
// BodyStream that reads the upstream only when the client took the previous piece.
//
// Files, one per step: upstream_call.cpp (start, a try's endpoint, the timer, cancel),
// _connect.cpp (TCP connect, TLS handshake), _send.cpp (the request head), _bodies.cpp
// (streamed bodies both ways), _answer.cpp (reading the answer, delivering it), _finish.cpp
// (I/O errors, retries, ending a try and the call), _tunnel.cpp (WebSocket tunnels).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <optional>

#include "sluice/body_stream.hpp"
#include "sluice/exchange.hpp"
#include "upstream/cluster.hpp"
#include "upstream/forwarding.hpp"
#include "upstream/simple_answer.hpp"

namespace sluice::upstream {

class UpstreamFaults;

// What a `proxy` handler routes to; shared by the handler and its calls in flight.
struct ProxyRoute {
  std::shared_ptr<Cluster> cluster;
  ForwardingPolicy forwarding;
  std::chrono::milliseconds timeout{15'000};  // the whole request, all tries; 0: none
  UpstreamFaults* faults = nullptr;
  bool websocket = false;  // forward `Upgrade: websocket` and tunnel after a 101
  // A tunnel with no bytes either way for this long is closed (as Envoy's stream idle timeout
  // and nginx's proxy_read_timeout do to upgraded connections); 0: never.
  std::chrono::milliseconds websocket_idle_timeout{300'000};
};

class UpstreamCall : public std::enable_shared_from_this<UpstreamCall> {
 public:
  UpstreamCall(std::shared_ptr<const ProxyRoute> route, Exchange& ex, Resume resume,
               boost::asio::io_context& io);
  ~UpstreamCall();
  void start();

 private:
  using error_code = boost::system::error_code;
  enum class Wait { kNone, kConnect, kTry, kBlackHole, kTunnelIdle, kBackoff };

  // After a 101: the upstream's raw bytes, to the client.
  class UpstreamTunnel final : public BodyStream {
   public:
    explicit UpstreamTunnel(UpstreamCall& call) : call_(call) {}
    void read(ReadFn fn) override { call_.read_tunnel_piece(std::move(fn)); }
    std::optional<std::uint64_t> length() const override { return std::nullopt; }

   private:
    UpstreamCall& call_;
  };

  // The upstream's answer as a stream (answers larger than buffer_response_bytes).
  class ResponseBody final : public BodyStream {
   public:
    explicit ResponseBody(UpstreamCall& call) : call_(call) {}
    void read(ReadFn fn) override { call_.read_response_piece(std::move(fn)); }
    std::optional<std::uint64_t> length() const override;

   private:
    UpstreamCall& call_;
  };

  void try_once(int avoid);
  void connect_fresh();
  void on_connected(error_code ec);
  void send();
  void on_written(error_code ec);
  void send_body_piece();
  void on_body_piece(BodyPiece piece);
  void body_sent();
  void on_upload_error(error_code ec);
  void wait_response();
  void on_received(error_code ec, std::size_t n);
  void parse_response();
  bool take_simple_answer();
  int answer_status() const;
  void read_response_piece(BodyStream::ReadFn fn);
  void continue_response_piece();
  void end_response_stream(BodyPiece piece);
  void read_tunnel_piece(BodyStream::ReadFn fn);
  void pump_client_to_upstream();
  void end_tunnel();
  void tunnel_activity();
  void finish_tunnel(BodyPiece piece);
  void take_buffered_bytes();
  void hand_piece(BodyPiece piece);
  std::chrono::milliseconds idle_timeout() const;
  void on_timer(error_code ec);
  void on_timeout();
  void on_handshake(error_code ec);
  void on_connect_failure(std::string why, std::string_view error = "upstream_unreachable");
  void on_io_error(error_code ec);
  void on_response();
  void on_cancel();

  void arm(std::optional<SteadyTime> until, Wait what);
  // True when another try is allowed (count, method, budget, deadline); sets the wait before it
  // (backoff, at least `retry_after` — more than the backoff's cap refuses the retry).
  bool may_retry(bool nothing_sent,
                 std::optional<std::chrono::milliseconds> retry_after = std::nullopt);
  void retry();
  std::optional<std::chrono::milliseconds> answer_retry_after() const;
  bool reusable() const;
  void end_try(bool keep_connection);
  void deliver();
  void fail(int status, std::string_view error, std::string message);
  void finish();
  bool idempotent() const;

  std::shared_ptr<const ProxyRoute> route_;
  Cluster& cluster_;
  Exchange* ex_;
  Resume resume_;
  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  UpstreamRequest request_;
  std::string head_;              // request_'s serialized head for the current try
  std::string_view client_host_;  // in the client request, which outlives every try
  std::shared_ptr<UpstreamConnection> conn_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body,
                                                    detail::FieldAllocator<char>>>
      parser_;
  SimpleAnswer simple_;  // the answer read without Beast's parser (see simple_answer.hpp)
  bool simple_read_ = false;
  std::string response_body_;  // the buffered answer, or the streamed piece the client is sent
  std::shared_ptr<BodyStream> request_stream_;  // the client's body, when the server streams it
  std::string chunk_head_;                      // "<hex size>\r\n" of a request body chunk
  ResponseBody response_stream_{*this};
  UpstreamTunnel tunnel_stream_{*this};
  std::shared_ptr<BodyStream> client_tunnel_;  // the client's raw bytes after the 101
  std::string upgrade_;                        // the Upgrade value forwarded (websocket)
  bool tunneling_ = false;                     // 101 received: raw bytes both ways
  bool tunnel_idle_ = false;                   // closed for lack of traffic: a clean end
  BodyStream::ReadFn piece_reader_;            // the client's read of the next answer piece
  SteadyTime started_;
  std::optional<SteadyTime> deadline_;      // the whole request
  std::optional<SteadyTime> try_deadline_;  // this try
  Wait waiting_ = Wait::kNone;
  std::uint64_t timer_generation_ = 0;
  int endpoint_ = -1;
  int retries_ = 0;
  int last_endpoint_ = -1;                   // the last try's endpoint, which a retry avoids
  std::chrono::milliseconds next_delay_{0};  // the backoff before the retry may_retry allowed
  bool holds_retry_slot_ = false;
  bool reused_ = false;
  bool fresh_retry_done_ = false;
  bool timed_out_ = false;
  bool done_ = false;          // the exchange has its answer (a streamed body may go on)
  bool body_started_ = false;  // pieces of a streamed request body went out: no retry
  bool upstream_keep_alive_ = false;
  bool request_sent_ = false;        // the whole request (head and body) went upstream this try
  bool reading_answer_ = false;      // a read of the answer is outstanding
  bool streaming_response_ = false;  // the answer's body is being streamed to the client
  bool piece_pending_ = false;       // response_body_ holds the first piece, not yet read
};

}  // namespace sluice::upstream
