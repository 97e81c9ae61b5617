#include "server/tls/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cctype>
#include <cstdio>
#include <fstream>

#include "net/openssl_text.hpp"

namespace sluice::server {

namespace asio = boost::asio;

namespace {

using net::openssl_error;
using net::readable_file;

std::string asn1_time_text(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "?";
  ASN1_TIME_print(bio, t);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The certificate's DNS subjectAltNames, or its common name when it has none (old certificates).
std::vector<std::string> dns_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const auto* data = ASN1_STRING_get0_data(n->d.dNSName);
      names.push_back(
          lower(std::string_view(reinterpret_cast<const char*>(data),
                                 static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
      names.push_back(lower(cn));
  }
  return names;
}

bool name_matches(std::string_view pattern, std::string_view name) {
  if (pattern == name) return true;
  if (!pattern.starts_with("*.")) return false;
  const auto dot = name.find('.');  // the wildcard stands for exactly one label
  return dot != std::string_view::npos && dot > 0 && name.substr(dot) == pattern.substr(1);
}

// ALPN: http/1.1 is what sluice speaks; a client offering only others (h2) gets no ALPN answer
// and may go on with HTTP/1.1 or give up, as with nginx.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                unsigned int in_length, void*) {
  static constexpr unsigned char kOurs[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kOurs, sizeof kOurs, in, in_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// SNI: switch the connection to the certificate that answers the name. An unknown name keeps
// the default certificate (nginx's default_server); the client's own verification refuses it.
int on_server_name(SSL* ssl, int*, void* self) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  auto* context = static_cast<const TlsContext*>(self)->context_for(name);
  if (context != nullptr && context->native_handle() != SSL_get_SSL_CTX(ssl))
    SSL_set_SSL_CTX(ssl, context->native_handle());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

TlsContext::~TlsContext() = default;

std::shared_ptr<const TlsContext> TlsContext::build(const TlsSettings& settings,
                                                    TlsBuildError& error) {
  ERR_clear_error();
  auto fail = [&](std::string field, int index, std::string message) {
    error = {std::move(field), index, std::move(message)};
    return nullptr;
  };
  if (settings.certificates.empty())
    return fail("certificates", -1, "TLS needs at least one certificate (cert_file, key_file)");
  if (settings.min_version != "1.2" && settings.min_version != "1.3")
    return fail("min_version", -1, "must be \"1.2\" or \"1.3\"");
  if (!settings.client_ca_file.empty() && !readable_file(settings.client_ca_file))
    return fail("client_ca_file", -1, "cannot read \"" + settings.client_ca_file + "\"");

  std::shared_ptr<TlsContext> tls(new TlsContext());
  tls->handshake_timeout_ = settings.handshake_timeout;
  for (std::size_t i = 0; i < settings.certificates.size(); ++i) {
    const auto& files = settings.certificates[i];
    const int index = static_cast<int>(i);
    if (files.cert_file.empty()) return fail("cert_file", index, "missing certificate file");
    if (files.key_file.empty()) return fail("key_file", index, "missing private key file");
    if (!readable_file(files.cert_file))
      return fail("cert_file", index, "cannot read \"" + files.cert_file + "\"");
    if (!readable_file(files.key_file))
      return fail("key_file", index, "cannot read \"" + files.key_file + "\"");
    Entry entry;
    entry.context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX* ctx = entry.context->native_handle();
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_min_proto_version(ctx,
                                  settings.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // idle keep-alive connections hold less
    const std::string ciphers = settings.ciphers.empty() ? kDefaultTls12Ciphers : settings.ciphers;
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1)
      return fail("ciphers", -1, "no usable cipher in \"" + ciphers + "\": " + openssl_error());
    if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str()) != 1) {
      return fail("cert_file", index,
                  "\"" + files.cert_file + "\" is not a PEM certificate: " + openssl_error());
    }
    // The key is read on its own first, so "not a key" and "not this certificate's key" are
    // told apart (SSL_CTX_use_PrivateKey_file reports both as a mismatch).
    EVP_PKEY* key = nullptr;
    if (FILE* f = std::fopen(files.key_file.c_str(), "r")) {
      key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
      std::fclose(f);
    }
    if (key == nullptr) {
      return fail("key_file", index,
                  "\"" + files.key_file + "\" is not a PEM private key: " + openssl_error());
    }
    const bool matches =
        SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!matches) {
      ERR_clear_error();
      return fail("key_file", index,
                  "the key \"" + files.key_file + "\" does not match the certificate \"" +
                      files.cert_file + "\"");
    }
    // Resumption: a session cache and tickets; the id context makes sessions of this listener
    // resumable only here (and is required with client certificates).
    static constexpr unsigned char kSessionId[] = "sluice";
    SSL_CTX_set_session_id_context(ctx, kSessionId, sizeof kSessionId - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
    if (!settings.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, settings.client_ca_file.c_str(), nullptr) != 1) {
        return fail(
            "client_ca_file", -1,
            "\"" + settings.client_ca_file + "\" holds no CA certificate: " + openssl_error());
      }
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.client_ca_file.c_str());
      if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);  // hints for the client
      SSL_CTX_set_verify(
          ctx,
          SSL_VERIFY_PEER |
              (settings.client_certificate_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
          nullptr);
    }
    entry.names = dns_names(SSL_CTX_get0_certificate(ctx));
    // Out of its validity dates: served anyway (as nginx and Envoy do), with a warning; clients
    // refuse it, but refusing the config would take down every other certificate with it.
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
      tls->warnings_.push_back("the certificate \"" + files.cert_file + "\" expired on " +
                               asn1_time_text(X509_get0_notAfter(cert)));
    } else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
      tls->warnings_.push_back("the certificate \"" + files.cert_file + "\" is not valid before " +
                               asn1_time_text(X509_get0_notBefore(cert)));
    }
    tls->files_.push_back(files.cert_file);
    tls->files_.push_back(files.key_file);
    tls->entries_.push_back(std::move(entry));
  }
  // SNI picks the certificate; the callback lives on the context connections start with.
  SSL_CTX* first = tls->entries_.front().context->native_handle();
  SSL_CTX_set_tlsext_servername_callback(first, on_server_name);
  SSL_CTX_set_tlsext_servername_arg(first, tls.get());
  if (!settings.client_ca_file.empty()) tls->files_.push_back(settings.client_ca_file);
  ERR_clear_error();
  return tls;
}

asio::ssl::context* TlsContext::context_for(std::string_view server_name) const {
  const std::string name = lower(server_name);
  for (const auto& e : entries_)  // exact names first, then wildcards, as nginx
    for (const auto& n : e.names)
      if (n == name) return e.context.get();
  for (const auto& e : entries_)
    for (const auto& n : e.names)
      if (name_matches(n, name)) return e.context.get();
  return nullptr;
}

std::vector<std::vector<std::string>> TlsContext::names() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& e : entries_)
    out.push_back(e.names);
  return out;
}

std::string certificate_subject(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string certificate_alt_names(X509* cert) {
  std::string out;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    auto text = [](const ASN1_STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<std::size_t>(ASN1_STRING_length(s)));
    };
    std::string item;
    if (n->type == GEN_DNS) {
      item = "DNS:" + text(n->d.dNSName);
    } else if (n->type == GEN_URI) {
      item = "URI:" + text(n->d.uniformResourceIdentifier);
    } else if (n->type == GEN_EMAIL) {
      item = "email:" + text(n->d.rfc822Name);
    } else if (n->type == GEN_IPADD) {
      const auto* d = ASN1_STRING_get0_data(n->d.iPAddress);
      const int len = ASN1_STRING_length(n->d.iPAddress);
      if (len == 4) {
        asio::ip::address_v4::bytes_type b;
        std::copy(d, d + 4, b.begin());
        item = "IP:" + asio::ip::address_v4(b).to_string();
      } else if (len == 16) {
        asio::ip::address_v6::bytes_type b;
        std::copy(d, d + 16, b.begin());
        item = "IP:" + asio::ip::address_v6(b).to_string();
      }
    }
    // A comma or a control byte inside a name would forge a second entry in the header.
    if (item.empty() || item.find_first_of(std::string_view(",\r\n\0", 4)) != std::string::npos)
      continue;
    out.append(out.empty() ? "" : ",").append(item);
  }
  GENERAL_NAMES_free(sans);
  return out;
}

const char* tls_handshake_failure_reason(const boost::system::error_code& ec, bool timed_out) {
  if (timed_out) return "timeout";
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
      ec == asio::error::connection_reset) {
    return "eof";
  }
  if (ec.category() != asio::error::get_ssl_category()) return "io";
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return "no_client_certificate";
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      return "bad_client_certificate";
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return "certificate_rejected_by_client";
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_VERSION_NUMBER:
      return "unsupported_version";
    case SSL_R_NO_SHARED_CIPHER:
      return "no_shared_cipher";
    case SSL_R_HTTP_REQUEST:
      return "http_request";
    default:
      return "protocol";
  }
}

}  // namespace sluice::server
