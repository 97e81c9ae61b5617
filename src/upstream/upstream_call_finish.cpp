// How a try ends: an I/O error, the retry rules (count, method, budget, deadline, backoff),
// keeping or closing the connection, and how the call ends (an answer, or a JSON error).
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

void UpstreamCall::on_io_error(error_code ec) {
  if (timed_out_) return on_timeout();
  const bool nothing_received = !parser_->got_some() && conn_->buffer.size() == 0;
  if (reused_ && nothing_received && !fresh_retry_done_ && !body_went_out()) {
    // The pooled connection died under us (closed between the check and the write): once, on
    // a fresh connection to the same endpoint; this is not a retry of the request.
    fresh_retry_done_ = true;
    conn_.reset();
    return connect_fresh();
  }
  cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  end_try(false);
  if (detached())  // a failed write leaves the upload at kHead
    return give_up((upload_ == Upload::kSent ? "read: " : "write: ") + ec.message());
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

namespace {
double uniform_draw() {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}
}  // namespace

bool UpstreamCall::may_retry(bool nothing_sent,
                             std::optional<std::chrono::milliseconds> retry_after) {
  const auto& policy = cluster_.config().retries;
  if (retries_ >= policy.max || detached()) return false;
  if (body_went_out()) return false;  // the streamed body's pieces that went out are gone
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
  if (upload_ != Upload::kSent) return false;  // answered before the whole body went up
  if (simple_read_) return conn_ && upstream_keep_alive_ && conn_->buffer.size() == 0;
  return conn_ && parser_ && parser_->is_done() && upstream_keep_alive_ && !parser_->need_eof() &&
         conn_->buffer.size() == 0;
}

// Ends the current try: the endpoint's in-flight count, the connection (pooled only after a
// complete keep-alive exchange with nothing left over), the timer. A held retry slot stays
// until the retry itself ends (finish releases it).
void UpstreamCall::end_try(bool keep_connection, std::optional<SteadyTime> now) {
  waiting_ = Wait::kNone;
  stop_waiting();
  if (endpoint_ >= 0) {
    if (cluster_.counts_in_flight())
      cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->active.fetch_sub(
          1, std::memory_order_relaxed);
    last_endpoint_ = endpoint_;
  }
  endpoint_ = -1;
  if (!conn_) return;
  ConnectionPool* pool = cluster_.pool();
  if (keep_connection && pool != nullptr) {
    ++conn_->uses;
    pool->put(std::move(conn_), now ? *now : cluster_.clock().now());
  } else {
    // Ends what is still pending on it now (a body write after an early answer): under TLS
    // those operations keep the connection alive until they complete.
    error_code ignored;
    conn_->socket.close(ignored);
  }
  conn_.reset();
}

void UpstreamCall::fail(int status, std::string_view error, std::string message) {
  if (detached()) return give_up(std::move(message));
  if (cluster_.metrics().errors) cluster_.metrics().errors->Increment();
  ex_->answer_error(status, error, message);
  if (ex_->upstream().empty())
    ex_->set_upstream(cluster_.name(), cluster_.clock().now() - started_);
  finish();
}

// Ends the kTrying phase: `next` is kAnswered, or kStreamingAnswer / kTunneling when deliver()
// handed the client a stream that goes on reading the connection.
void UpstreamCall::finish(Phase next) {
  if (!trying()) return;
  enter(next);
  if (next == Phase::kAnswered) end_try(false);
  if (holds_retry_slot_) cluster_.budget().retry_finished();
  holds_retry_slot_ = false;
  cluster_.budget().request_finished();
  resume_(Decision::respond());
  if (phase_ == Phase::kTunneling)
    pump_client_to_upstream();  // the handshake's answer is on its way
}

}  // namespace sluice::upstream
