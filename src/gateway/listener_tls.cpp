#include "gateway/listener_tls.hpp"

#include <spdlog/spdlog.h>

namespace sluice::gateway {

std::shared_ptr<const server::TlsContext> read_listener_tls(const Settings& tls) {
  server::TlsSettings t;
  // One certificate inline (cert_file, key_file), or several under `certificates:` (SNI).
  const bool inline_certificate = tls.has("cert_file") || tls.has("key_file");
  if (inline_certificate)
    t.certificates.push_back({tls.string("cert_file"), tls.string("key_file")});
  auto listed = tls.children("certificates");
  for (auto& c : listed)
    t.certificates.push_back({c.string("cert_file"), c.string("key_file")});
  t.min_version = tls.choice("min_version", {"1.2", "1.3"}, "1.2");
  t.ciphers = tls.string("ciphers");
  // SSL_CTX_set_cipher_list chooses TLS 1.2 suites only; TLS 1.3 keeps OpenSSL's own.
  if (tls.has("ciphers") && t.min_version == "1.3")
    tls.error("ciphers",
              "has no effect with min_version: \"1.3\" (the list chooses TLS 1.2 suites only)");
  t.client_ca_file = tls.string("client_ca_file");
  const auto verify = tls.choice("verify_client", {"require", "optional"}, "require");
  t.client_certificate_optional = verify == "optional";
  if (tls.has("verify_client") && t.client_ca_file.empty())
    tls.error("verify_client", "needs client_ca_file (the CA that signs client certificates)");
  t.handshake_timeout = tls.millis("handshake_timeout_ms", t.handshake_timeout);
  if (!tls.ok()) return nullptr;

  server::TlsBuildError error;
  auto built = server::TlsContext::build(t, error);
  if (built) {
    for (const auto& w : built->warnings())
      spdlog::warn("{}: {}", tls.path(), w);
    return built;
  }
  if (error.index < 0) {
    tls.error(error.field == "certificates" ? "" : error.field, error.message);
  } else if (inline_certificate && error.index == 0) {
    tls.error(error.field, error.message);
  } else {
    listed[static_cast<std::size_t>(error.index - (inline_certificate ? 1 : 0))].error(
        error.field, error.message);
  }
  return nullptr;
}

}  // namespace sluice::gateway
