// The call's lifecycle: construction, the first try, the timer (deadlines, backoff, tunnel idle),
// the client going away. The steps of a try are in upstream_call_{connect,send,answer,finish}.cpp.
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
#include "core/spare_strings.hpp"
#include "net/eager_write.hpp"
#include "upstream/upstream_call_internal.hpp"
#include "upstream/upstream_faults.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

UpstreamCall::UpstreamCall(std::shared_ptr<const ProxyRoute> route, Exchange& ex, Resume resume,
                           asio::io_context& io)
    : route_(std::move(route)),
      cluster_(*route_->cluster),
      ex_(&ex),
      resume_(std::move(resume)),
      max_answer_bytes_(cluster_.config().max_response_bytes),
      buffer_answer_bytes_(cluster_.config().buffer_response_bytes),
      io_(io) {
  use_deadlines();
}

void UpstreamCall::use_deadlines() {
  if (&cluster_.clock() != &system_steady_clock()) {  // a test's clock: the Asio timer
    timer_.emplace(io_);
    return;
  }
  deadlines_ = &Deadlines::of(io_);
  wait_entry_.owner = this;
  wait_entry_.fire = &UpstreamCall::on_deadline;
  // The worker's io_context ends with this call still waiting (a stop during a slow upstream):
  // its hold on itself goes, as the pending Asio wait's handler did, or the call would leak.
  wait_entry_.drop = [](Deadlines::Entry& e) {
    const auto release = std::move(static_cast<UpstreamCall*>(e.owner)->held_);
  };
}

// A streamed answer dropped by the client before its end: the endpoint's in-flight count still
// holds this call (the connection itself closes with conn_).
UpstreamCall::~UpstreamCall() {
  if (trying()) leave_cancel_target();  // dropped while trying (its worker stopping)
  if (wait_entry_.linked) deadlines_->remove(wait_entry_);
  if (endpoint_ >= 0 && cluster_.counts_in_flight())
    cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->active.fetch_sub(
        1, std::memory_order_relaxed);
  detail::SpareStrings::give(std::move(request_.fields));
  detail::SpareStrings::give(std::move(head_));
}

// The legal moves (the drawings in upstream_call.hpp), checked where they are written down.
static_assert(UpstreamCall::legal(UpstreamCall::Phase::kTrying, UpstreamCall::Phase::kAnswered));
static_assert(UpstreamCall::legal(UpstreamCall::Phase::kTrying, UpstreamCall::Phase::kCancelled));
static_assert(UpstreamCall::legal(UpstreamCall::Phase::kStreamingAnswer,
                                  UpstreamCall::Phase::kAnswered));
static_assert(!UpstreamCall::legal(UpstreamCall::Phase::kAnswered, UpstreamCall::Phase::kTrying));
static_assert(!UpstreamCall::legal(UpstreamCall::Phase::kCancelled,
                                   UpstreamCall::Phase::kAnswered));
static_assert(!UpstreamCall::legal(UpstreamCall::Phase::kTunneling,
                                   UpstreamCall::Phase::kStreamingAnswer));
static_assert(UpstreamCall::legal(UpstreamCall::Upload::kSent, UpstreamCall::Upload::kHead));
static_assert(!UpstreamCall::legal(UpstreamCall::Upload::kBody, UpstreamCall::Upload::kHead));

bool UpstreamCall::idempotent() const {
  switch (request_.method) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
      return true;
    default:
      return false;
  }
}

void UpstreamCall::start(SteadyTime now) {
  started_ = now;
  if (detached()) {
    deadline_ = started_ + route_->timeout;
    return try_once(-1, started_);
  }
  cluster_.budget().request_started();
  become_cancel_target();
  client_host_ = ex_->request().header("Host");
  request_stream_ = ex_->request_body_stream();
  // Buffers with room for the header lines and the head (not one allocation per doubling),
  // from the thread's spares: a call is made per request (core/spare_strings.hpp).
  request_.fields = detail::SpareStrings::take(512);
  head_ = detail::SpareStrings::take(1024);
  const auto& context = ex_->context();
  build_upstream_request(ex_->request(),
                         ClientConnection{.peer_ip = context.peer_ip(),
                                          .tls = context.tls(),
                                          .cert_subject = context.client_cert_subject(),
                                          .cert_san = context.client_cert_san()},
                         route_->forwarding, request_, request_stream_.get());
  // A WebSocket handshake, when the route allows it and the server can tunnel: Upgrade and
  // Connection go upstream (they are hop-by-hop, so only on purpose).
  if (route_->websocket && ex_->upgrade_stream() &&
      beast::iequals(ex_->request().header("Upgrade"), "websocket")) {
    upgrade_ = "websocket";
    request_.fields.append("Connection: Upgrade\r\nUpgrade: websocket\r\n");
  }
  deadline_ = ex_->context().deadline();
  if (route_->timeout.count() > 0) deadline_ = earliest(deadline_, started_ + route_->timeout);
  try_once(-1, started_);
}

void UpstreamCall::arm(std::optional<SteadyTime> until, Wait what) {
  waiting_ = what;
  timed_out_ = false;
  if (!until) return stop_waiting();
  if (deadlines_ != nullptr) {
    deadlines_->add(wait_entry_, *until);
    if (!held_) held_ = shared_from_this();
    return;
  }
  // The cluster's clock decides deadlines; the timer waits the same span of real time.
  timer_->expires_after(*until - cluster_.clock().now());
  timer_->async_wait([self = shared_from_this(), generation = ++timer_generation_](error_code ec) {
    // A wait that completed just before being re-armed is not this wait's timeout.
    if (generation == self->timer_generation_) self->on_timer(ec);
  });
}

// The wait arm() set ends without firing: its entry leaves the worker's Deadlines with the hold
// on the call that the entry kept, or (a test's clock) the Asio wait is cancelled and its late
// completion made stale. Every caller holds the call (a completion's `self`, the owner calling
// start(), the cancel's locked weak_ptr), so letting the hold go never ends `this` under it.
void UpstreamCall::stop_waiting() {
  if (deadlines_ != nullptr) {
    deadlines_->remove(wait_entry_);
    const auto release = std::move(held_);
    return;
  }
  ++timer_generation_;
  timer_->cancel();
}

void UpstreamCall::try_once(int avoid, SteadyTime now) {
  if (deadline_ && now >= *deadline_) return fail(504, "upstream_timeout", "deadline exceeded");
  try_deadline_ = deadline_;
  if (cluster_.config().per_try_timeout.count() > 0 && !detached())
    try_deadline_ = earliest(try_deadline_, now + cluster_.config().per_try_timeout);
  endpoint_ = fixed_endpoint_ >= 0 ? fixed_endpoint_ : cluster_.pick(now, avoid);
  if (endpoint_ < 0) return fail(502, "upstream_unreachable", "the cluster has no endpoints");
  auto& ep = *cluster_.endpoints()[static_cast<std::size_t>(endpoint_)];
  if (cluster_.counts_in_flight()) ep.active.fetch_add(1, std::memory_order_relaxed);

  if (route_->faults != nullptr) {
    if (auto fault = route_->faults->check(cluster_.name())) {
      switch (fault->kind) {
        case UpstreamFault::Kind::kConnectRefused:
          return on_connect_failure("connection refused (injected fault)");
        case UpstreamFault::Kind::kBlackHole:
          // Nothing ever answers: wait for this try's deadline (or the cancel).
          return arm(try_deadline_ ? try_deadline_
                                   : std::optional<SteadyTime>(now + std::chrono::seconds(15)),
                     Wait::kBlackHole);
        case UpstreamFault::Kind::kStatus:
          end_try(false);
          if (cluster_.retry_on_status(fault->status) && may_retry(true)) return retry();
          ex_->answer_error(fault->status, "fault_upstream_status",
                            "injected upstream status " + std::to_string(fault->status));
          return finish();
      }
    }
  }

  reused_ = false;
  if (ConnectionPool* pool = cluster_.pool()) {
    conn_ = pool->take(static_cast<std::size_t>(endpoint_), now);
    if (conn_) {
      reused_ = true;
      return send();
    }
  }
  connect_fresh();
}

void UpstreamCall::on_timer(error_code ec) {
  if (waiting_ == Wait::kBackoff) {
    if (ec || !trying()) return;
    waiting_ = Wait::kNone;
    return try_once(last_endpoint_);
  }
  if (!ec && waiting_ == Wait::kTunnelIdle && phase_ == Phase::kTunneling) {
    tunnel_idle_ = true;  // the upstream read ends with an error, taken as a clean end
    return end_tunnel();
  }
  if (ec || (phase_ != Phase::kTrying && phase_ != Phase::kStreamingAnswer)) return;
  timed_out_ = true;
  if (waiting_ == Wait::kBlackHole) return on_timeout();
  // Closing the socket completes the pending operation with an error; it then sees timed_out_.
  if (conn_) {
    error_code ignored;
    conn_->socket.close(ignored);
  }
}

// A deadline of the worker's list came (it left the list): as the Asio timer's completion.
void UpstreamCall::on_deadline(Deadlines::Entry& e) {
  const auto self = std::move(static_cast<UpstreamCall*>(e.owner)->held_);
  self->on_timer({});
}

void UpstreamCall::on_timeout() {
  if (detached()) {  // not counted against the endpoint's health
    end_try(false);
    return give_up("timed out", true);
  }
  const bool connecting = waiting_ == Wait::kConnect;
  if (connecting && endpoint_ >= 0)
    cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  end_try(false);
  if (deadline_ && cluster_.clock().now() >= *deadline_)
    return fail(504, "upstream_timeout", "the upstream did not answer in time");
  if (may_retry(connecting)) return retry();
  fail(504, "upstream_timeout",
       connecting ? "connecting to the upstream timed out" : "the upstream did not answer in time");
}

void UpstreamCall::on_cancel() {
  if (!trying()) return;
  enter(Phase::kCancelled);
  // The client is gone: close (never pool) the connection, release what this call held, and
  // leave the exchange alone (its Resume is stale now).
  if (conn_) {
    error_code ignored;
    conn_->socket.close(ignored);
  }
  end_try(false);
  if (detached()) {
    DetachedResult r;
    r.error = "cancelled";
    auto done = std::move(done_);
    return done(std::move(r));
  }
  if (holds_retry_slot_) cluster_.budget().retry_finished();
  holds_retry_slot_ = false;
  cluster_.budget().request_finished();
}

}  // namespace sluice::upstream
