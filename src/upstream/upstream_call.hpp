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
// Detached (detached_call.hpp): no Exchange; one try to a given endpoint under one timeout, the
// whole answer (Beast's parser, up to 8 MiB, never streamed) handed to a callback as a
// DetachedResult; errors keep the texts middlewares and queue records show ("connect: ...").
//
// Files, one per step: upstream_call.cpp (start, a try's endpoint, the timer, cancel),
// _connect.cpp (TCP connect, TLS handshake), _send.cpp (the request head), _bodies.cpp
// (streamed bodies both ways), _answer.cpp (reading the answer, delivering it), _finish.cpp
// (I/O errors, retries, ending a try and the call), _tunnel.cpp (WebSocket tunnels), _detached.cpp
// (the detached mode: its requests, its answer, its ends).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>

#include "sluice/body_stream.hpp"
#include "sluice/exchange.hpp"
#include "upstream/cluster.hpp"
#include "upstream/deadlines.hpp"
#include "upstream/detached_call.hpp"
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
  // Detached: `request` (Host excluded: route->forwarding.host_rewrite names it) to endpoint
  // `endpoint` of route->cluster within route->timeout; the answer goes to `done`.
  UpstreamCall(std::shared_ptr<const ProxyRoute> route, int endpoint, UpstreamRequest request,
               boost::asio::io_context& io, std::function<void(DetachedResult)> done);
  ~UpstreamCall();
  void start() { start(cluster_.clock().now()); }
  // Starts as of `now` on the cluster's clock, a reading the caller holds (the proxy handler's
  // start, Exchange::hook_time): the call's time, deadlines and first try count from it.
  void start(SteadyTime now);
  // Ends the call as the client going away does; a detached call's `done` gets "cancelled".
  void cancel() { on_cancel(); }

  // The call's phase. Tries (and retries: a backoff, then another try) happen in kTrying; an
  // answer for the exchange (the upstream's, or a JSON error) ends it, through finish().
  //
  //   start ──► kTrying ──(the client went away: on_cancel)──────────────► kCancelled
  //               ├──(a buffered answer, or a JSON 502/504)────────────────► kAnswered
  //               ├──(an answer larger than buffer_response_bytes)──► kStreamingAnswer
  //               │         (its last piece read, or the upstream failed)──► kAnswered
  //               └──(101 to a WebSocket handshake)──────────────────► kTunneling
  //                         (either side closed, idle, or failed)──────────► kAnswered
  //
  // kAnswered and kCancelled are final: what completes then (an upload write after an early
  // answer, a timer) sees the phase and does nothing. The first piece of a large answer is read
  // in kTrying (piece_pending_): a retry on its status drops it, deliver() streams the rest. A
  // streamed answer or a tunnel lives in the stream the session holds: the client dropping it
  // ends the call (the destructor), not on_cancel.
  //
  // Detached, the same drawing with two arrows: kTrying ──(the answer, or an error, handed to
  // `done`)──► kAnswered, and kTrying ──(cancel())──► kCancelled; never streaming or tunneling.
  enum class Phase : std::uint8_t {
    kTrying,           // tries run: connect, send, read; the exchange has no answer yet
    kAnswered,         // the exchange has its whole answer; nothing of the call goes on
    kStreamingAnswer,  // the head is the client's; the body is read as the client takes it
    kTunneling,        // after a 101: raw bytes both ways
    kCancelled,        // the client went away before the answer
  };
  // The request's way up, within a try; the answer is read at the same time (reading_answer_),
  // since an upstream may answer before the whole body went up.
  //
  //   send() ──► kHead ──(head + buffered body written)──────────────► kSent
  //                └──(head written; a streamed body)──► kBody ──(last piece)──► kSent
  //
  // A new try starts at kHead again; once a streamed body's piece went out (kBody, or kSent
  // through kBody) there is no new try.
  enum class Upload : std::uint8_t { kHead, kBody, kSent };
  static constexpr bool legal(Phase from, Phase to) {
    if (from == Phase::kTrying) return to != Phase::kTrying;
    if (from == Phase::kStreamingAnswer || from == Phase::kTunneling) return to == Phase::kAnswered;
    return false;  // kAnswered and kCancelled are final
  }
  static constexpr bool legal(Upload from, Upload to) {
    switch (from) {
      case Upload::kHead:
        return true;
      case Upload::kBody:
        return to != Upload::kHead;  // no new try after a piece went out
      case Upload::kSent:
        return to == Upload::kHead;  // the next try
    }
    return false;
  }

 private:
  using error_code = boost::system::error_code;
  enum class Wait { kNone, kConnect, kTry, kBlackHole, kTunnelIdle, kBackoff };
  // The only writers of phase_ and upload_; a move the drawings do not allow is a bug.
  void enter(Phase next) {
    assert(legal(phase_, next) && "UpstreamCall: a phase change the drawing does not allow");
    if (phase_ == Phase::kTrying) leave_cancel_target();
    phase_ = next;
  }
  void upload(Upload next) {
    assert(legal(upload_, next) && "UpstreamCall: an upload step the drawing does not allow");
    upload_ = next;
  }
  bool trying() const { return phase_ == Phase::kTrying; }
  bool detached() const { return ex_ == nullptr; }
  // A piece of a streamed request body went out in this call: the request cannot be sent again.
  bool body_went_out() const { return request_stream_ && upload_ != Upload::kHead; }

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

  // `now`: the caller's clock read, when it just made one (one read fewer per request).
  void try_once(int avoid) { try_once(avoid, cluster_.clock().now()); }
  void try_once(int avoid, SteadyTime now);
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
  static void on_deadline(Deadlines::Entry& e);
  void use_deadlines();
  void on_timeout();
  void on_handshake(error_code ec);
  void on_connect_failure(std::string why, std::string_view error = "upstream_unreachable");
  void on_io_error(error_code ec);
  void on_response();
  void on_cancel();
  // The client going away reaches the call while it tries (upstream_call_cancel.cpp).
  void become_cancel_target();
  void leave_cancel_target();

 public:
  struct CancelTarget;  // a slot of the request's context (upstream_call_cancel.cpp)

 private:
  void arm(std::optional<SteadyTime> until, Wait what);
  void stop_waiting();  // the wait arm() set ends unfired (upstream_call.cpp)
  // True when another try is allowed (count, method, budget, deadline); sets the wait before it
  // (backoff, at least `retry_after` — more than the backoff's cap refuses the retry).
  bool may_retry(bool nothing_sent,
                 std::optional<std::chrono::milliseconds> retry_after = std::nullopt);
  void retry();
  std::optional<std::chrono::milliseconds> answer_retry_after() const;
  bool reusable() const;
  void end_try(bool keep_connection, std::optional<SteadyTime> now = std::nullopt);
  void deliver();
  void fail(int status, std::string_view error, std::string message);
  void finish(Phase next = Phase::kAnswered);
  bool idempotent() const;
  // The detached mode's ends (upstream_call_detached.cpp).
  void deliver_detached();
  void give_up(std::string why, bool timed_out = false);
  void hand_over(DetachedResult result);

  std::shared_ptr<const ProxyRoute> route_;
  Cluster& cluster_;
  Exchange* ex_;                           // nullptr: detached
  CancelTarget* cancel_target_ = nullptr;  // while trying: where the exchange's cancel finds it
  Resume resume_;
  std::function<void(DetachedResult)> done_;  // detached: where the answer goes
  int fixed_endpoint_ = -1;                   // detached: the endpoint of every try
  std::uint64_t max_answer_bytes_;            // the parser's body limit (0: none)
  std::size_t buffer_answer_bytes_;           // larger answers stream to the client
  boost::asio::io_context& io_;
  // The waits when the cluster's clock is not the real one (a test's FakeClock). Made only
  // then: constructing an Asio timer looks its service up under the io_context's registry
  // mutex, once per call (docs/PERFORMANCE.md, "single-writer shards").
  std::optional<boost::asio::steady_timer> timer_;
  // On the real clock the waits are entries in the worker's Deadlines (no Asio timer per
  // request); while one is in the list, held_ keeps the call alive as a pending wait would.
  Deadlines* deadlines_ = nullptr;
  Deadlines::Entry wait_entry_;
  std::shared_ptr<UpstreamCall> held_;
  UpstreamRequest request_;
  std::string head_;              // request_'s serialized head for the current try
  std::string_view client_host_;  // in the client request, which outlives every try
  std::shared_ptr<UpstreamConnection> conn_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body,
                                                    detail::FieldAllocator<char>>>
      parser_;
  SimpleAnswer simple_;        // the answer read without Beast's parser (see simple_answer.hpp)
  std::string response_body_;  // the buffered answer, or the streamed piece the client is sent
  std::shared_ptr<BodyStream> request_stream_;  // the client's body, when the server streams it
  std::string chunk_head_;                      // "<hex size>\r\n" of a request body chunk
  ResponseBody response_stream_{*this};
  UpstreamTunnel tunnel_stream_{*this};
  std::shared_ptr<BodyStream> client_tunnel_;  // the client's raw bytes after the 101
  std::string upgrade_;                        // the Upgrade value forwarded (websocket)
  BodyStream::ReadFn piece_reader_;            // the client's read of the next answer piece
  SteadyTime started_;
  std::optional<SteadyTime> deadline_;      // the whole request
  std::optional<SteadyTime> try_deadline_;  // this try
  std::uint64_t timer_generation_ = 0;
  int endpoint_ = -1;
  int retries_ = 0;
  int last_endpoint_ = -1;                   // the last try's endpoint, which a retry avoids
  std::chrono::milliseconds next_delay_{0};  // the backoff before the retry may_retry allowed

  // The states, explicit (drawn at Phase and Upload above); moved only through enter() and
  // upload(), which assert a legal move in debug builds.
  Phase phase_ = Phase::kTrying;
  Upload upload_ = Upload::kHead;  // this try's request; beside it, at the same time:
  bool reading_answer_ = false;    // a read of the answer is outstanding (early answers)
  Wait waiting_ = Wait::kNone;     // what the timer is armed for

  // Facts, not states: what happened in this call or this try, read by later steps.
  // Of the call:
  bool holds_retry_slot_ = false;  // the cluster's retry budget counts this call's retry
  bool tunnel_idle_ = false;       // the tunnel was closed for lack of traffic: a clean end
  // Of the try:
  bool reused_ = false;               // the connection came from the pool
  bool fresh_retry_done_ = false;     // the pooled connection failed and was replaced once
  bool timed_out_ = false;            // the timer fired: the pending operation's error is that
  bool simple_read_ = false;          // the answer was read by the fast reader (simple_)
  bool upstream_keep_alive_ = false;  // the answer allows reusing the connection
  bool piece_pending_ = false;        // response_body_ holds the answer's first piece, not yet read
};

}  // namespace sluice::upstream
