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

UpstreamCall::UpstreamCall(std::shared_ptr<const ProxyRoute> route, Exchange& ex, Resume resume,
                           asio::io_context& io)
    : route_(std::move(route)),
      cluster_(*route_->cluster),
      ex_(&ex),
      resume_(std::move(resume)),
      io_(io),
      timer_(io) {}

// A streamed answer dropped by the client before its end: the endpoint's in-flight count still
// holds this call (the connection itself closes with conn_).
UpstreamCall::~UpstreamCall() {
  if (endpoint_ >= 0)
    cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->active.fetch_sub(
        1, std::memory_order_relaxed);
}

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
  request_stream_ = ex_->request_body_stream();
  request_.fields.reserve(512);  // one allocation for the header lines, not one per doubling
  head_.reserve(1024);
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
  if (const auto* tls = cluster_.tls()) {
    // The handshake runs under the connect timeout (still armed): connect_timeout_ms covers
    // both, as a new connection is not usable before its handshake is done.
    conn_->tls = std::make_unique<UpstreamTls::Stream>(conn_->socket, tls->context());
    tls->prepare(conn_->tls->native_handle(), static_cast<std::size_t>(endpoint_));
    conn_->tls->async_handshake(
        asio::ssl::stream_base::client,
        conn_->keeping_alive([self = shared_from_this()](error_code e) { self->on_handshake(e); }));
    return;
  }
  conn_->socket.non_blocking(true, ignored);  // eager_write: a plain write first
  send();
}

void UpstreamCall::on_handshake(error_code ec) {
  if (done_) return;
  if (timed_out_) {
    cluster_.record_tls_failure("timeout");
    return on_timeout();
  }
  SSL* ssl = conn_->tls->native_handle();
  if (ec) {
    const char* reason = upstream_tls_failure_reason(ssl, ec);
    cluster_.record_tls_failure(reason);
    const auto& tls = *cluster_.tls();
    tls.forget_session(static_cast<std::size_t>(endpoint_));
    return on_connect_failure("TLS handshake failed (" + std::string(reason) +
                                  ", checking the name \"" +
                                  tls.verified_name(static_cast<std::size_t>(endpoint_)) +
                                  "\"): " + upstream_tls_failure_detail(ssl, ec),
                              "upstream_tls");
  }
  cluster_.record_tls_handshake(SSL_session_reused(ssl) == 1);
  send();
}

namespace {
template <class Parser>
void prepare_parser(std::optional<Parser>& parser, std::uint64_t max_body, bool head) {
  parser.emplace();
  parser->header_limit(64 * 1024);
  parser->body_limit(max_body > 0 ? boost::optional<std::uint64_t>(max_body) : boost::none);
  if (head) parser->skip(true);
}
}  // namespace

void UpstreamCall::send() {
  arm(request_stream_ ? std::optional<SteadyTime>(cluster_.clock().now() + idle_timeout())
                      : try_deadline_,
      Wait::kTry);
  prepare_parser(parser_, cluster_.config().max_response_bytes,
                 request_.method == http::verb::head);
  simple_read_ = false;
  request_sent_ = reading_answer_ = false;
  response_body_.clear();
  serialize_head(
      request_,
      upstream_host(route_->forwarding, *cluster_.endpoints()[static_cast<std::size_t>(endpoint_)],
                    client_host_),
      head_);
  if (conn_->tls) {
    // One TLS record for a small request rather than one for the head and one for the body.
    if (!request_.body.empty() && head_.size() + request_.body.size() <= 16 * 1024) {
      head_.append(request_.body);
      return conn_->write(
          asio::buffer(head_),
          [self = shared_from_this()](error_code ec, std::size_t) { self->on_written(ec); });
    }
    const std::array<asio::const_buffer, 2> wire{asio::buffer(head_), asio::buffer(request_.body)};
    return conn_->write(
        wire, [self = shared_from_this()](error_code ec, std::size_t) { self->on_written(ec); });
  }
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head_), asio::buffer(request_.body)};
  net::eager_write(conn_->socket, wire,
                   [self = shared_from_this()](error_code ec) { self->on_written(ec); });
}

void UpstreamCall::on_written(error_code ec) {
  if (done_) return;
  if (ec) return on_io_error(ec);
  if (request_stream_) {
    // The answer is read while the body goes up: an upstream may answer early (a 413, a 401)
    // and stop reading; its answer then reaches the client instead of a 502 for the failed write.
    wait_response();
    return send_body_piece();
  }
  request_sent_ = true;
  wait_response();
}

std::chrono::milliseconds UpstreamCall::idle_timeout() const {
  if (cluster_.config().per_try_timeout.count() > 0) return cluster_.config().per_try_timeout;
  if (route_->timeout.count() > 0) return route_->timeout;
  return std::chrono::seconds(60);
}

// An asynchronous read, not a readiness wait: a readiness wait re-arms the descriptor with
// epoll_ctl every time. The read costs at most one speculative recv (EAGAIN when the answer is not
// there yet; docs/ARCHITECTURE.md, "System calls per request").
void UpstreamCall::wait_response() {
  reading_answer_ = true;
  conn_->read_some(
      conn_->buffer.prepare(kPieceBytes),
      [self = shared_from_this()](error_code ec, std::size_t n) { self->on_received(ec, n); });
}

void UpstreamCall::on_received(error_code ec, std::size_t n) {
  reading_answer_ = false;
  if (tunneling_) {
    if (ec == asio::error::eof || (ec && tunnel_idle_)) return finish_tunnel({.last = true});
    if (ec) return finish_tunnel({.failed = true, .status = 502});
    tunnel_activity();
    conn_->buffer.commit(n);
    take_buffered_bytes();
    return hand_piece({.data = response_body_});
  }
  if (!streaming_response_ && done_) return;
  if (ec == asio::error::eof && parser_->is_header_done() && parser_->need_eof()) {
    parser_->put_eof(ec);  // a body delimited by the close: complete now
  }
  if (ec) {
    if (streaming_response_) return end_response_stream({.failed = true, .status = 502});
    return on_io_error(ec);
  }
  conn_->buffer.commit(n);
  if (streaming_response_) return continue_response_piece();
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
      prepare_parser(parser_, cluster_.config().max_response_bytes,
                     request_.method == http::verb::head);
      if (conn_->buffer.size() == 0) return wait_response();
    }
  }
  upstream_keep_alive_ = keeps_alive(parser_->get(), parser_->get().version(),
                                     parser_->keep_alive());  // from the parser's flags
  error_code ec;
  switch (detail::put_body(*parser_, conn_->buffer, response_body_,
                           cluster_.config().buffer_response_bytes, ec)) {
    case detail::body_status::done:
      return on_response();
    case detail::body_status::full:
      streaming_response_ = piece_pending_ = true;
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
  if (request_.method == http::verb::head) return false;
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

void UpstreamCall::on_timer(error_code ec) {
  if (waiting_ == Wait::kBackoff) {
    if (ec || done_) return;
    waiting_ = Wait::kNone;
    return try_once(last_endpoint_);
  }
  if (!ec && waiting_ == Wait::kTunnelIdle && tunneling_) {
    tunnel_idle_ = true;  // the upstream read ends with an error, taken as a clean end
    return end_tunnel();
  }
  if (ec || (done_ && !streaming_response_)) return;
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

void UpstreamCall::on_connect_failure(std::string why, std::string_view error) {
  cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  const std::string endpoint = cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->text;
  end_try(false);
  // Nothing was sent: a connect failure may be retried whatever the method.
  if (may_retry(true)) return retry();
  fail(502, error, endpoint + ": " + why);
}

void UpstreamCall::on_io_error(error_code ec) {
  if (timed_out_) return on_timeout();
  const bool nothing_received = !parser_->got_some() && conn_->buffer.size() == 0;
  if (reused_ && nothing_received && !fresh_retry_done_ && !body_started_) {
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
  if (ec.category() == asio::error::get_ssl_category()) {
    cluster_.record_tls_failure(upstream_tls_failure_reason(nullptr, ec));
    // An alert after the handshake: with TLS 1.3 a client certificate the upstream requires
    // or refuses is only reported on the first read.
    return fail(502, "upstream_tls",
                cluster_.endpoints()[static_cast<std::size_t>(last_endpoint_)]->text +
                    ": TLS error from the upstream: " + upstream_tls_failure_detail(nullptr, ec));
  }
  fail(502, "bad_gateway",
       too_large ? "the upstream's answer exceeds the limit"
       : nothing_received
           ? "the upstream closed the connection without answering"
           : "the upstream's answer was invalid or cut short (" + ec.message() + ")");
}

void UpstreamCall::on_response() {
  const int status = answer_status();
  if (status == 101 && upgrade_.empty()) {
    end_try(false);
    return fail(502, "bad_gateway", "the upstream switched protocols without being asked to");
  }
  const auto now = cluster_.clock().now();
  if (status >= 500)
    cluster_.record_failure(static_cast<std::size_t>(endpoint_), now);
  else
    cluster_.record_success(static_cast<std::size_t>(endpoint_));
  if (cluster_.retry_on_status(status) && may_retry(false, answer_retry_after())) {
    streaming_response_ = piece_pending_ = false;
    end_try(reusable());
    return retry();
  }
  deliver();
}

namespace {
double uniform_draw() {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}
}  // namespace

bool UpstreamCall::may_retry(bool nothing_sent,
                             std::optional<std::chrono::milliseconds> retry_after) {
  const auto& policy = cluster_.config().retries;
  if (retries_ >= policy.max) return false;
  if (body_started_) return false;  // the streamed body's pieces that went out are gone
  if (!nothing_sent && !idempotent()) return false;
  next_delay_ = policy.backoff.delay(retries_ + 1, uniform_draw());
  if (retry_after) {
    // The upstream names its own wait; longer than we would ever wait: its answer goes to the
    // client as it is (as Envoy's rate-limited retry back-off).
    if (*retry_after > std::max(policy.backoff.max, policy.backoff.base)) return false;
    next_delay_ = std::max(next_delay_, *retry_after);
  }
  if (deadline_ && cluster_.clock().now() + next_delay_ >= *deadline_) return false;
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
  fresh_retry_done_ = false;
  if (next_delay_.count() <= 0) return try_once(last_endpoint_);
  arm(cluster_.clock().now() + next_delay_, Wait::kBackoff);
}

std::optional<std::chrono::milliseconds> UpstreamCall::answer_retry_after() const {
  std::string_view value;
  if (simple_read_) {
    for (std::size_t i = 0; i < simple_.field_count; ++i) {
      const auto& f = simple_.fields[i];
      if (f.name == http::field::retry_after) {
        value = std::string_view(simple_.head.data() + f.value_at, f.value_size);
        break;
      }
    }
  } else if (parser_) {
    const auto& fields = parser_->get();
    if (auto it = fields.find(http::field::retry_after); it != fields.end()) value = it->value();
  }
  if (value.empty()) return std::nullopt;
  return parse_retry_after(value, std::chrono::system_clock::now());
}

bool UpstreamCall::reusable() const {
  if (!request_sent_) return false;  // answered before the whole body went up
  if (simple_read_) return conn_ && upstream_keep_alive_ && conn_->buffer.size() == 0;
  return conn_ && parser_ && parser_->is_done() && upstream_keep_alive_ && !parser_->need_eof() &&
         conn_->buffer.size() == 0;
}

// Ends the current try: the endpoint's in-flight count, the connection (pooled only after a
// complete keep-alive exchange with nothing left over), the timer. A held retry slot stays
// until the retry itself ends (finish releases it).
void UpstreamCall::end_try(bool keep_connection) {
  waiting_ = Wait::kNone;
  ++timer_generation_;
  timer_.cancel();
  if (endpoint_ >= 0) {
    cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->active.fetch_sub(
        1, std::memory_order_relaxed);
    last_endpoint_ = endpoint_;
  }
  endpoint_ = -1;
  if (!conn_) return;
  ConnectionPool* pool = cluster_.pool();
  if (keep_connection && pool != nullptr) {
    ++conn_->uses;
    pool->put(std::move(conn_), cluster_.clock().now());
  } else {
    // Ends what is still pending on it now (a body write after an early answer): under TLS
    // those operations keep the connection alive until they complete.
    error_code ignored;
    conn_->socket.close(ignored);
  }
  conn_.reset();
}

void UpstreamCall::deliver() {
  const int endpoint = endpoint_;
  auto& out = ex_->response().native();
  const unsigned version = out.version();
  const bool keep = reusable();
  if (simple_read_) {  // hop-by-hop fields and Content-Length were left out, Via is in
    apply_simple_answer(simple_, out);
    out.version(version);
    out.body().swap(response_body_);
    end_try(keep);
    ex_->set_upstream(cluster_.endpoints()[static_cast<std::size_t>(endpoint)]->label,
                      cluster_.clock().now() - started_);
    return finish();
  }
  // The header moves out of the parser; a streaming parser goes on reading the body.
  out.base() = std::move(parser_->get().base());
  out.body().clear();
  if (out.result_int() == 101) {  // a WebSocket handshake accepted: tunnel from here on
    tunneling_ = true;
    client_tunnel_ = ex_->upgrade_stream();
    arm(std::nullopt, Wait::kNone);
    tunnel_activity();
    ex_->set_response_body_stream(std::shared_ptr<BodyStream>(shared_from_this(), &tunnel_stream_));
  } else if (streaming_response_) {
    ex_->set_response_body_stream(
        std::shared_ptr<BodyStream>(shared_from_this(), &response_stream_));
  } else {
    out.body().swap(response_body_);
    end_try(keep);
  }
  out.version(version);
  strip_hop_by_hop(out.base());
  if (tunneling_) out.set(http::field::upgrade, upgrade_);  // the session adds Connection
  out.erase(http::field::content_length);                   // the server frames the body it writes
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
  if (!streaming_response_ && !tunneling_) end_try(false);
  if (holds_retry_slot_) cluster_.budget().retry_finished();
  holds_retry_slot_ = false;
  cluster_.budget().request_finished();
  resume_(Decision::respond());
  if (tunneling_) pump_client_to_upstream();  // the handshake's answer is on its way
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

}  // namespace sluice::upstream
