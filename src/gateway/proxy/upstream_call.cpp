#include "gateway/proxy/upstream_call.hpp"

#include <prometheus/counter.h>

#include <array>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include "chaos/upstream_faults.hpp"
#include "core/http_message.hpp"

namespace sluice::gateway::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
std::optional<SteadyTime> earliest(std::optional<SteadyTime> a, std::optional<SteadyTime> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}
}  // namespace

UpstreamCall::UpstreamCall(std::shared_ptr<const ProxyRoute> route, Exchange& ex, Resume resume,
                           asio::io_context& io)
    : route_(std::move(route)),
      cluster_(*route_->cluster),
      ex_(&ex),
      resume_(std::move(resume)),
      io_(io),
      timer_(io) {}

UpstreamCall::~UpstreamCall() = default;

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

void UpstreamCall::start() {
  started_ = cluster_.clock().now();
  cluster_.budget().request_started();
  std::weak_ptr<UpstreamCall> weak = weak_from_this();
  ex_->on_cancel([weak] {
    if (auto self = weak.lock()) self->on_cancel();
  });
  client_host_ = ex_->request().header("Host");
  build_upstream_request(ex_->request(), ex_->context().client_ip(), route_->forwarding, request_);
  deadline_ = ex_->context().deadline();
  if (route_->timeout.count() > 0) deadline_ = earliest(deadline_, started_ + route_->timeout);
  try_once(-1);
}

void UpstreamCall::arm(std::optional<SteadyTime> until, Wait what) {
  waiting_ = what;
  timed_out_ = false;
  if (!until) {
    ++timer_generation_;
    timer_.cancel();
    return;
  }
  // The cluster's clock decides deadlines; the timer waits the same span of real time.
  timer_.expires_after(*until - cluster_.clock().now());
  timer_.async_wait([self = shared_from_this(), generation = ++timer_generation_](error_code ec) {
    // A wait that completed just before being re-armed is not this wait's timeout.
    if (generation == self->timer_generation_) self->on_timer(ec);
  });
}

void UpstreamCall::try_once(int avoid) {
  const auto now = cluster_.clock().now();
  if (deadline_ && now >= *deadline_) return fail(504, "upstream_timeout", "deadline exceeded");
  try_deadline_ = deadline_;
  if (cluster_.config().per_try_timeout.count() > 0)
    try_deadline_ = earliest(try_deadline_, now + cluster_.config().per_try_timeout);
  endpoint_ = cluster_.pick(now, avoid);
  if (endpoint_ < 0) return fail(502, "upstream_unreachable", "the cluster has no endpoints");
  auto& ep = *cluster_.endpoints()[static_cast<std::size_t>(endpoint_)];
  ep.active.fetch_add(1, std::memory_order_relaxed);

  if (route_->faults != nullptr) {
    if (auto fault = route_->faults->check(cluster_.name())) {
      switch (fault->kind) {
        case chaos::UpstreamFault::Kind::kConnectRefused:
          return on_connect_failure("connection refused (injected fault)");
        case chaos::UpstreamFault::Kind::kBlackHole:
          // Nothing ever answers: wait for this try's deadline (or the cancel).
          return arm(try_deadline_ ? try_deadline_
                                   : std::optional<SteadyTime>(now + std::chrono::seconds(15)),
                     Wait::kBlackHole);
        case chaos::UpstreamFault::Kind::kStatus:
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

void UpstreamCall::connect_fresh() {
  const auto& ep = *cluster_.endpoints()[static_cast<std::size_t>(endpoint_)];
  conn_ = std::make_shared<UpstreamConnection>(io_, static_cast<std::size_t>(endpoint_));
  reused_ = false;
  arm(earliest(try_deadline_, cluster_.clock().now() + cluster_.config().connect_timeout),
      Wait::kConnect);
  conn_->socket.async_connect(
      ep.address, [self = shared_from_this()](error_code ec) { self->on_connected(ec); });
}

void UpstreamCall::on_connected(error_code ec) {
  if (done_) return;
  if (timed_out_) return on_timeout();
  if (ec)
    return on_connect_failure(ec == asio::error::connection_refused ? "connection refused"
                                                                    : "connect failed");
  error_code ignored;
  conn_->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  send();
}

void UpstreamCall::send() {
  arm(try_deadline_, Wait::kTry);
  parser_.emplace();
  parser_->header_limit(64 * 1024);
  parser_->body_limit(cluster_.config().max_response_bytes);
  if (request_.method == http::verb::head) parser_->skip(true);
  serialize_head(
      request_,
      upstream_host(route_->forwarding, *cluster_.endpoints()[static_cast<std::size_t>(endpoint_)],
                    client_host_),
      head_);
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head_), asio::buffer(request_.body)};
  asio::async_write(conn_->socket, wire, [self = shared_from_this()](error_code ec, std::size_t) {
    self->on_written(ec);
  });
}

void UpstreamCall::on_written(error_code ec) {
  if (done_) return;
  if (ec) return on_io_error(ec);
  // The answer cannot be there yet: wait for readability instead of a read that would only
  // return EAGAIN (one syscall less per request).
  conn_->socket.async_wait(asio::ip::tcp::socket::wait_read,
                           [self = shared_from_this()](error_code wec) {
                             if (self->done_) return;
                             if (wec) return self->on_io_error(wec);
                             self->read();
                           });
}

void UpstreamCall::read() {
  http::async_read(conn_->socket, conn_->buffer, *parser_,
                   [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
}

void UpstreamCall::on_read(error_code ec) {
  if (done_) return;
  if (ec) return on_io_error(ec);
  const int status = parser_->get().result_int();
  if (status >= 100 && status < 200 && status != 101) {  // interim answers: read on
    parser_.emplace();
    parser_->header_limit(64 * 1024);
    parser_->body_limit(cluster_.config().max_response_bytes);
    if (request_.method == http::verb::head) parser_->skip(true);
    return read();
  }
  on_response();
}

void UpstreamCall::on_timer(error_code ec) {
  if (ec || done_) return;
  timed_out_ = true;
  if (waiting_ == Wait::kBlackHole) return on_timeout();
  // Closing the socket completes the pending operation with an error; it then sees timed_out_.
  if (conn_) {
    error_code ignored;
    conn_->socket.close(ignored);
  }
}

void UpstreamCall::on_timeout() {
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

void UpstreamCall::on_connect_failure(const char* why) {
  cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  const std::string endpoint = cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->text;
  end_try(false);
  // Nothing was sent: a connect failure may be retried whatever the method.
  if (may_retry(true)) return retry();
  fail(502, "upstream_unreachable", endpoint + ": " + why);
}

void UpstreamCall::on_io_error(error_code ec) {
  if (timed_out_) return on_timeout();
  const bool nothing_received = !parser_->got_some() && conn_->buffer.size() == 0;
  if (reused_ && nothing_received && !fresh_retry_done_) {
    // The pooled connection died under us (closed between the check and the write): once, on
    // a fresh connection to the same endpoint; this is not a retry of the request.
    fresh_retry_done_ = true;
    conn_.reset();
    return connect_fresh();
  }
  cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  end_try(false);
  if (nothing_received && idempotent() && may_retry(false)) return retry();
  const bool too_large = ec == http::error::body_limit || ec == http::error::header_limit;
  fail(502, "bad_gateway",
       too_large ? "the upstream's answer exceeds the limit"
       : nothing_received
           ? "the upstream closed the connection without answering"
           : "the upstream's answer was invalid or cut short (" + ec.message() + ")");
}

void UpstreamCall::on_response() {
  const int status = parser_->get().result_int();
  const auto now = cluster_.clock().now();
  if (status >= 500)
    cluster_.record_failure(static_cast<std::size_t>(endpoint_), now);
  else
    cluster_.record_success(static_cast<std::size_t>(endpoint_));
  if (cluster_.retry_on_status(status) && may_retry(false)) {
    end_try(reusable());
    return retry();
  }
  deliver();
}

bool UpstreamCall::may_retry(bool nothing_sent) {
  if (retries_ >= cluster_.config().retries.max) return false;
  if (!nothing_sent && !idempotent()) return false;
  if (deadline_ && cluster_.clock().now() >= *deadline_) return false;
  if (holds_retry_slot_) {  // the retry that ends now gives its slot to the next one
    cluster_.budget().retry_finished();
    holds_retry_slot_ = false;
  }
  if (!cluster_.budget().try_start_retry()) {
    if (cluster_.metrics().retries_over_budget) cluster_.metrics().retries_over_budget->Increment();
    return false;
  }
  holds_retry_slot_ = true;
  return true;
}

void UpstreamCall::retry() {
  ++retries_;
  if (cluster_.metrics().retries) cluster_.metrics().retries->Increment();
  const int previous = endpoint_;
  endpoint_ = -1;
  fresh_retry_done_ = false;
  try_once(previous);
}

bool UpstreamCall::reusable() const {
  return conn_ && parser_ && parser_->is_done() && parser_->get().keep_alive() &&
         !parser_->need_eof() && conn_->buffer.size() == 0;
}

// Ends the current try: the endpoint's in-flight count, the connection (pooled only after a
// complete keep-alive exchange with nothing left over), the timer. A held retry slot stays
// until the retry itself ends (finish releases it).
void UpstreamCall::end_try(bool keep_connection) {
  waiting_ = Wait::kNone;
  ++timer_generation_;
  timer_.cancel();
  if (endpoint_ >= 0)
    cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->active.fetch_sub(
        1, std::memory_order_relaxed);
  endpoint_ = -1;
  if (!conn_) return;
  ConnectionPool* pool = cluster_.pool();
  if (keep_connection && pool != nullptr) {
    ++conn_->uses;
    pool->put(std::move(conn_), cluster_.clock().now());
  }
  conn_.reset();
}

void UpstreamCall::deliver() {
  const int endpoint = endpoint_;
  auto& out = ex_->response().native();
  const unsigned version = out.version();
  const bool keep = reusable();
  static_cast<http::response<http::string_body>&>(out) = parser_->release();
  end_try(keep);
  out.version(version);
  strip_hop_by_hop(out.base());
  out.erase(http::field::content_length);  // the server frames the body it writes
  if (auto via = out[http::field::via]; via.empty()) {
    out.set(http::field::via, "1.1 sluice");
  } else {
    out.set(http::field::via, std::string(via) + ", 1.1 sluice");
  }
  ex_->set_upstream(cluster_.endpoints()[static_cast<std::size_t>(endpoint)]->label,
                    cluster_.clock().now() - started_);
  finish();
}

void UpstreamCall::fail(int status, std::string_view error, std::string message) {
  if (cluster_.metrics().errors) cluster_.metrics().errors->Increment();
  ex_->answer_error(status, error, message);
  if (ex_->upstream().empty())
    ex_->set_upstream(cluster_.name(), cluster_.clock().now() - started_);
  finish();
}

void UpstreamCall::finish() {
  if (done_) return;
  done_ = true;
  end_try(false);
  if (holds_retry_slot_) cluster_.budget().retry_finished();
  holds_retry_slot_ = false;
  cluster_.budget().request_finished();
  resume_(Decision::respond());
}

void UpstreamCall::on_cancel() {
  if (done_) return;
  done_ = true;
  // The client is gone: close (never pool) the connection, release what this call held, and
  // leave the exchange alone (its Resume is stale now).
  if (conn_) {
    error_code ignored;
    conn_->socket.close(ignored);
  }
  end_try(false);
  if (holds_retry_slot_) cluster_.budget().retry_finished();
  holds_retry_slot_ = false;
  cluster_.budget().request_finished();
}

}  // namespace sluice::gateway::proxy
