// TlsContext — the server side of TLS for one listener: certificate and key files, several
// certificates chosen by SNI (the first is the default), TLS 1.2 and 1.3 with a modern cipher
// list, ALPN http/1.1, session resumption (tickets and a session cache), optional client
// certificates (mTLS). Built whole from files at config load; a reload builds a new one.
//
//   TlsSettings s;  s.certificates = {{"site.pem", "site.key"}};
//   TlsBuildError error;
//   auto tls = TlsContext::build(s, error);  // null and error.field/index/message on failure
//   boost::asio::ssl::stream<Socket&> stream(socket, tls->default_context());
#pragma once

#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::server {

struct TlsCertificateFiles {
  std::string cert_file;  // PEM: the certificate, then its intermediate chain
  std::string key_file;   // PEM: its private key
};

struct TlsSettings {
  std::vector<TlsCertificateFiles> certificates;  // [0] answers no or unknown SNI
  std::string min_version = "1.2";                // "1.2" or "1.3"
  std::string ciphers;                            // TLS 1.2 list; empty: kDefaultTls12Ciphers
  std::string client_ca_file;                     // set: clients present a certificate (mTLS)
  bool client_certificate_optional = false;       // mTLS: verify one if sent, allow none
  std::chrono::milliseconds handshake_timeout{10'000};
};

// Mozilla's "intermediate" TLS 1.2 list (forward secret AEAD only); TLS 1.3 suites are
// OpenSSL's defaults, all of them modern.
inline constexpr const char* kDefaultTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Where a build failed: the settings key ("certificates", "cert_file", "key_file",
// "client_ca_file", "ciphers", "min_version"), the index in `certificates` for the file keys
// (else -1), and a message a user can act on.
struct TlsBuildError {
  std::string field;
  int index = -1;
  std::string message;
};

class TlsContext {
 public:
  static std::shared_ptr<const TlsContext> build(const TlsSettings& settings, TlsBuildError& error);
  ~TlsContext();

  // New connections start on this one; SNI may move them to another certificate's.
  boost::asio::ssl::context& default_context() const { return *entries_.front().context; }
  std::chrono::milliseconds handshake_timeout() const { return handshake_timeout_; }
  // Every file the context was built from (certificates, keys, the client CA), for a watch.
  const std::vector<std::string>& files() const { return files_; }
  // Certificates served although out of their validity dates (expired, not yet valid).
  const std::vector<std::string>& warnings() const { return warnings_; }
  // The DNS names each certificate answers for, in order (for logs and tests).
  std::vector<std::vector<std::string>> names() const;
  // The context whose certificate answers `server_name` (exact names first, then wildcards
  // "*.example.com" of one label), or null.
  boost::asio::ssl::context* context_for(std::string_view server_name) const;

 private:
  TlsContext() = default;
  struct Entry {
    std::unique_ptr<boost::asio::ssl::context> context;
    std::vector<std::string> names;  // lower case; "*.example.com" matches one label
  };

  std::vector<Entry> entries_;
  std::vector<std::string> files_;
  std::vector<std::string> warnings_;
  std::chrono::milliseconds handshake_timeout_{10'000};
};

// A certificate's subject in RFC 2253 form ("CN=client,O=Example"), and its subjectAltNames
// as "DNS:a.example,URI:spiffe://x/y,IP:192.0.2.1,email:a@example" (empty when none).
std::string certificate_subject(X509* cert);
std::string certificate_alt_names(X509* cert);

// The label of sluice_tls_handshake_errors_total{reason} for a failed handshake: timeout, eof,
// no_client_certificate, bad_client_certificate, certificate_rejected_by_client,
// unsupported_version, no_shared_cipher, http_request (plain HTTP on a TLS port), protocol, io.
const char* tls_handshake_failure_reason(const boost::system::error_code& ec, bool timed_out);

}  // namespace sluice::server
