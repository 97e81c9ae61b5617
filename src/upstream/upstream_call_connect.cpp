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
  arm(earliest(try_deadline_, cluster_.clock().now() + cluster_.config().connect_timeout),
      Wait::kConnect);
  conn_->socket.async_connect(
      ep.address, [self = shared_from_this()](error_code ec) { self->on_connected(ec); });
}

void UpstreamCall::on_connected(error_code ec) {
  if (!trying()) return;
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
  if (!trying()) return;
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

void UpstreamCall::on_connect_failure(std::string why, std::string_view error) {
  cluster_.record_failure(static_cast<std::size_t>(endpoint_), cluster_.clock().now());
  const std::string endpoint = cluster_.endpoints()[static_cast<std::size_t>(endpoint_)]->text;
  end_try(false);
  // Nothing was sent: a connect failure may be retried whatever the method.
  if (may_retry(true)) return retry();
  fail(502, error, endpoint + ": " + why);
}

}  // namespace sluice::upstream
