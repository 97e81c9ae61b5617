// tls_half_close — end the sending half of a TLS stream (a close_notify alert, then a TCP FIN)
// while a read of the same stream is still pending, as a tunnel's half-close needs: the other
// direction goes on, and the peer can tell a clean end of this one from a cut (a bare FIN after
// TLS data is a truncation to a strict peer: Python's ssl, OpenSSL 3's unexpected EOF).
//
//   net::tls_half_close(*conn->tls, conn->socket, [](boost::system::error_code) {});
//
// asio::ssl::stream::async_shutdown cannot be used: after sending close_notify it reads until the
// peer's, a second read beside the pending one. So OpenSSL is told the peer's close_notify
// already came (SSL_RECEIVED_SHUTDOWN): SSL_shutdown then only writes ours, and async_shutdown
// completes after that write. The flag is cleared again at once — before the pending read can
// run, as both run on the stream's one thread — or records read later would be dropped
// (OpenSSL discards data after a received close_notify). The read then goes on as after any
// first SSL_shutdown, and ends at the peer's own close_notify.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/system/error_code.hpp>
#include <utility>

namespace sluice::net {

template <class Stream, class Socket, class Handler>
void tls_half_close(Stream& tls, Socket& socket, Handler&& done) {
  SSL* ssl = tls.native_handle();
  if ((SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) != 0) {  // sent before: the FIN only
    boost::system::error_code ignored;
    socket.shutdown(boost::asio::socket_base::shutdown_send, ignored);
    return done(ignored);
  }
  const int received = SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN;
  SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
  // SSL_shutdown runs inside this call; only the write of the alert is left pending.
  tls.async_shutdown([&socket, done = std::forward<Handler>(done)](boost::system::error_code ec) {
    boost::system::error_code ignored;
    socket.shutdown(boost::asio::socket_base::shutdown_send, ignored);
    done(ec);
  });
  SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | received);
}

}  // namespace sluice::net
