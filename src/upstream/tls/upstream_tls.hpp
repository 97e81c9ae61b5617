// UpstreamTls — the client side of TLS for one upstream cluster: the CA bundle that verifies the
// upstream (the system's by default), the name sent in SNI and checked against its certificate
// (the endpoint's host by default, or `sni:`), an optional client certificate (upstream mTLS),
// ALPN http/1.1, and TLS session resumption: the last session each endpoint gave is offered by
// every new connection to it (each with a copy of its own, so concurrent ones resume too), so
// only the first connection pays a full handshake.
// Built whole from files at config load; a reload with changed files builds a new one.
//
//   upstreams:
//     api: { endpoints: ["api.internal:443"], tls: { ca_file: ca.pem, sni: api.example.com } }
//
//   UpstreamTlsError error;
//   auto tls = UpstreamTls::build(settings, {"api.internal"}, error);  // null on error
//   UpstreamTls::Stream stream(socket, tls->context());
//   tls->prepare(stream.native_handle(), endpoint_index);   // SNI, name check, resumption
//   stream.async_handshake(client, ...);
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/system_ca_bundle.hpp"

namespace sluice::upstream {

// The system's CA bundle on Debian (ca-certificates), used when a cluster names no ca_file.
using net::kSystemCaBundle;

struct UpstreamTlsSettings {
  std::string ca_file;    // PEM bundle that signs the upstream's certificate; empty: system's
  std::string sni;        // name sent and verified; empty: each endpoint's host
  std::string cert_file;  // client certificate (PEM, with its chain), for upstream mTLS
  std::string key_file;
  std::string min_version = "1.2";  // "1.2" or "1.3"
  bool session_reuse = true;        // offer the endpoint's last session to new connections
};

// Where a build failed: the settings key (ca_file, cert_file, key_file, sni) and a message.
struct UpstreamTlsError {
  std::string field;
  std::string message;
};

class UpstreamTls {
 public:
  using Stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>;

  // `hosts`: each endpoint's host as configured ("api.internal", "10.0.0.7", "::1").
  static std::shared_ptr<const UpstreamTls> build(const UpstreamTlsSettings& settings,
                                                  const std::vector<std::string>& hosts,
                                                  UpstreamTlsError& error);
  ~UpstreamTls();
  UpstreamTls(const UpstreamTls&) = delete;
  UpstreamTls& operator=(const UpstreamTls&) = delete;

  boost::asio::ssl::context& context() const { return *context_; }
  // Before the handshake of a new connection to endpoint `index`: SNI (a DNS name only, never an
  // address, RFC 6066), the name or address the certificate must carry, and the session to
  // resume when there is one.
  void prepare(SSL* ssl, std::size_t index) const;
  // After a failed handshake: the next connection to endpoint `index` starts afresh.
  void forget_session(std::size_t index) const;
  // The name the certificate of endpoint `index` is checked against (logs, errors).
  const std::string& verified_name(std::size_t index) const { return peers_[index]->name; }

 private:
  UpstreamTls() = default;
  struct Peer {
    std::string name;
    bool is_address = false;
    mutable std::mutex mutex;
    SSL_SESSION* session = nullptr;  // the last one the endpoint gave (owned), or null
  };
  static int on_new_session(SSL* ssl, SSL_SESSION* session);

  std::unique_ptr<boost::asio::ssl::context> context_;
  std::vector<std::unique_ptr<Peer>> peers_;
  bool session_reuse_ = true;
};

// Why an upstream handshake failed, as a metric label (sluice_upstream_tls_handshake_errors_total
// {reason}): untrusted_certificate, name_mismatch, expired_certificate, certificate_rejected
// (the upstream's alert, e.g. a client certificate it requires or refuses), protocol, eof, io.
const char* upstream_tls_failure_reason(SSL* ssl, const boost::system::error_code& ec);
// The same for people: "certificate verify failed: unable to get local issuer certificate".
std::string upstream_tls_failure_detail(SSL* ssl, const boost::system::error_code& ec);

}  // namespace sluice::upstream
