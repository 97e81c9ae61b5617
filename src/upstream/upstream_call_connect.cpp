// A try's connection: a fresh TCP connect, the TLS handshake of a `tls:` cluster, and what a
// failure to connect becomes (a retry on another endpoint, or a 502/504).
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

void UpstreamCall::connect_fresh() {
  const auto& ep = *cluster_.endpoints()[static_cast<std::size_t>(endpoint_)];
  conn_ = std::make_shared<UpstreamConnection>(io_, static_cast<std::size_t>(endpoint_));
  reused_ = false;
  // A detached call has one timeout only.
  arm(detached()
          ? try_deadline_
          : earliest(try_deadline_, cluster_.clock().now() + cluster_.config().connect_timeout),
      Wait::kConnect);
  conn_->socket.async_connect(
      ep.address, [self = shared_from_this()](error_code ec) { self->on_connected(ec); });
}

void UpstreamCall::on_connected(error_code ec) {
  if (!trying()) return;
  if (timed_out_) return on_timeout();
  if (ec && detached()) return on_connect_failure("connect: " + ec.message());
  if (ec)
    return on_connect_failure(ec == asio::error::connection_refused ? "connection refused"
                                                                    : "connect failed");
  error_code ignored;
  conn_->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (cluster_.tls() != nullptr) {
    // The handshake runs under the connect timeout (still armed): connect_timeout_ms covers
    // both, as a new connection is not usable before its handshake is done.
    cluster_.tls_handshake(*conn_, conn_->keeping_alive([self = shared_from_this()](error_code e) {
      self->on_handshake(e);
    }));
    return;
  }
  conn_->socket.non_blocking(true, ignored);  // eager_write: a plain write first
  conn_->reads.enable(conn_->socket);
  send();
}

void UpstreamCall::on_handshake(error_code ec) {
  if (!trying()) return;
  if (timed_out_) {
    // A detached call's handshake cut by its one timeout was never counted (the shadow client
    // ignored the late completion): kept so, the metric unchanged.
    if (!detached()) cluster_.record_tls_failure("timeout");
    return on_timeout();
  }
  if (auto failure = cluster_.tls_handshake_done(*conn_, ec)) {
    if (detached()) return on_connect_failure("TLS handshake: " + failure->detail);
    return on_connect_failure(
        "TLS handshake failed (" + std::string(failure->reason) + ", checking the name \"" +
            cluster_.tls()->verified_name(static_cast<std::size_t>(endpoint_)) +
            "\"): " + failure->detail,
        "upstream_tls");
  }
  send();
}

void UpstreamCall::on_connect_failure(std::string why, std::string_view error) {
  cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  const std::string endpoint = cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->text;
  end_try(false);
  if (detached()) return give_up(std::move(why));
  // Nothing was sent: a connect failure may be retried whatever the method.
  if (may_retry(true)) return retry();
  fail(502, error, endpoint + ": " + why);
}

}  // namespace sluice::upstream
