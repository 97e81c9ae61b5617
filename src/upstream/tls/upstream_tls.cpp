#include "upstream/tls/upstream_tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cstdio>
#include <fstream>

#include "net/openssl_text.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;

namespace {

using net::openssl_error;
using net::readable_file;

// The SSL's Peer, for the new-session callback.
int peer_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool is_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

std::shared_ptr<const UpstreamTls> UpstreamTls::build(const UpstreamTlsSettings& settings,
                                                      const std::vector<std::string>& hosts,
                                                      UpstreamTlsError& error) {
  auto fail = [&](std::string field, std::string message) {
    ERR_clear_error();
    error = {std::move(field), std::move(message)};
    return nullptr;
  };
  std::shared_ptr<UpstreamTls> tls(new UpstreamTls());
  tls->context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* ctx = tls->context_->native_handle();
  SSL_CTX_set_min_proto_version(ctx,
                                settings.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);

  const bool system_bundle = settings.ca_file.empty();
  const std::string ca = system_bundle ? kSystemCaBundle : settings.ca_file;
  if (!readable_file(ca)) {
    return fail("ca_file", system_bundle ? "no ca_file given and the system CA bundle \"" + ca +
                                               "\" cannot be read (install ca-certificates)"
                                         : "cannot read \"" + ca + "\"");
  }
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1)
    return fail("ca_file", "\"" + ca + "\" holds no CA certificate: " + openssl_error());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);

  if (settings.cert_file.empty() != settings.key_file.empty()) {
    return fail(settings.cert_file.empty() ? "cert_file" : "key_file",
                "a client certificate needs both cert_file and key_file");
  }
  if (!settings.cert_file.empty()) {
    if (!readable_file(settings.cert_file))
      return fail("cert_file", "cannot read \"" + settings.cert_file + "\"");
    if (!readable_file(settings.key_file))
      return fail("key_file", "cannot read \"" + settings.key_file + "\"");
    if (SSL_CTX_use_certificate_chain_file(ctx, settings.cert_file.c_str()) != 1) {
      return fail("cert_file",
                  "\"" + settings.cert_file + "\" is not a PEM certificate: " + openssl_error());
    }
    EVP_PKEY* key = nullptr;
    if (FILE* f = std::fopen(settings.key_file.c_str(), "r")) {
      key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
      std::fclose(f);
    }
    if (key == nullptr) {
      return fail("key_file",
                  "\"" + settings.key_file + "\" is not a PEM private key: " + openssl_error());
    }
    const bool matches =
        SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!matches) {
      return fail("key_file", "the key \"" + settings.key_file +
                                  "\" does not match the certificate \"" + settings.cert_file +
                                  "\"");
    }
  }

  static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);

  // Resumption: OpenSSL hands each new session (TLS 1.2 after the handshake, TLS 1.3 with each
  // ticket) to on_new_session, which keeps it for the endpoint; nothing in OpenSSL's own cache.
  tls->session_reuse_ = settings.session_reuse;
  if (settings.session_reuse) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &UpstreamTls::on_new_session);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  }

  for (const auto& host : hosts) {
    auto peer = std::make_unique<Peer>();
    peer->name = settings.sni.empty() ? host : settings.sni;
    peer->is_address = is_address(peer->name);
    tls->peers_.push_back(std::move(peer));
  }
  return tls;
}

UpstreamTls::~UpstreamTls() {
  for (auto& peer : peers_)
    if (peer->session != nullptr) SSL_SESSION_free(peer->session);
}

void UpstreamTls::prepare(SSL* ssl, std::size_t index) const {
  Peer& peer = *peers_[index];
  if (peer.is_address) {
    // No SNI for an address (RFC 6066 §3); its certificate must name the address (IP SAN).
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), peer.name.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, peer.name.c_str());
    SSL_set1_host(ssl, peer.name.c_str());
    // "*.example.com" matches one label, never a partial one ("w*.example.com").
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  if (!session_reuse_) return;
  SSL_set_ex_data(ssl, peer_index(), &peer);
  // Each connection resumes from a copy of its own. OpenSSL treats TLS 1.3 tickets as single
  // use on the client: a connection that resumed with a session marks that very SSL_SESSION
  // not resumable (tls_finish_handshake -> SSL_CTX_remove_session sets not_resumable), so with a
  // shared object every connection opened between one resumption and the new ticket it brings
  // made a full handshake (the concurrent case of issue 14). The server decides whether a ticket
  // may be used again: stateless tickets (OpenSSL's and sluice's default, nginx's) can, and
  // nginx's proxy_ssl_session_reuse likewise gives every connection its own copy of the last
  // session. A server that refuses a second use answers with a full handshake, nothing worse.
  SSL_SESSION* copy = nullptr;
  {
    std::lock_guard lock(peer.mutex);
    if (peer.session != nullptr) copy = SSL_SESSION_dup(peer.session);
  }
  if (copy == nullptr) return;
  SSL_set_session(ssl, copy);  // takes its own reference
  SSL_SESSION_free(copy);
}

int UpstreamTls::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* peer = static_cast<Peer*>(SSL_get_ex_data(ssl, peer_index()));
  if (peer == nullptr) return 0;
  // A copy: OpenSSL marks the connection's own session not resumable when the connection is
  // freed without a TLS shutdown (as pooled connections are), which would spoil the original.
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (copy == nullptr) return 0;
  std::lock_guard lock(peer->mutex);
  if (peer->session != nullptr) SSL_SESSION_free(peer->session);
  peer->session = copy;
  return 0;  // the original stays OpenSSL's
}

void UpstreamTls::forget_session(std::size_t index) const {
  Peer& peer = *peers_[index];
  std::lock_guard lock(peer.mutex);
  if (peer.session != nullptr) SSL_SESSION_free(peer.session);
  peer.session = nullptr;
}

namespace {
long verify_result(SSL* ssl) {
  return ssl == nullptr ? X509_V_OK : SSL_get_verify_result(ssl);
}
}  // namespace

const char* upstream_tls_failure_reason(SSL* ssl, const boost::system::error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
      ec == asio::error::connection_reset) {
    return "eof";
  }
  if (ec.category() != asio::error::get_ssl_category()) return "io";
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      switch (verify_result(ssl)) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
          return "name_mismatch";
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
          return "expired_certificate";
        default:
          return "untrusted_certificate";
      }
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      return "certificate_rejected";
    default:
      return "protocol";
  }
}

std::string upstream_tls_failure_detail(SSL* ssl, const boost::system::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    return std::string("certificate verify failed: ") +
           X509_verify_cert_error_string(verify_result(ssl));
  }
  return ec.message();
}

}  // namespace sluice::upstream
