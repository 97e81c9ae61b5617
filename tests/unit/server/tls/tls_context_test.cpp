// TlsContext (server/tls/): certificates made here with the openssl CLI, SNI names from their
// subjectAltNames (exact before wildcard, one label per '*'), build errors naming the key and
// the index at fault, and the reason labels of failed handshakes.
#include "server/tls/tls_context.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cstdio>

#include "support/sluice_process.hpp"

namespace sluice::server {
namespace {

// A self-signed certificate for `names` (comma separated DNS names): dir/stem.pem, dir/stem.key.
void make_certificate(const testing::TempDir& dir, const std::string& stem,
                      const std::string& names) {
  std::string san;
  for (std::size_t at = 0; at != std::string::npos;) {
    const auto comma = names.find(',', at);
    san += (san.empty() ? "DNS:" : ",DNS:") + names.substr(at, comma - at);
    at = comma == std::string::npos ? comma : comma + 1;
  }
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=" +
      names.substr(0, names.find(',')) + " -addext subjectAltName=" + san + " -keyout " +
      dir.file(stem + ".key") + " -out " + dir.file(stem + ".pem") + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(TlsContext, SniNamesComeFromSubjectAltNamesExactBeforeWildcard) {
  testing::TempDir dir;
  make_certificate(dir, "a", "a.test,www.a.test");
  make_certificate(dir, "wild", "*.b.test");
  make_certificate(dir, "exact", "x.b.test");
  TlsSettings s;
  for (auto stem : {"a", "wild", "exact"})
    s.certificates.push_back(
        {dir.file(std::string(stem) + ".pem"), dir.file(std::string(stem) + ".key")});
  TlsBuildError error;
  auto tls = TlsContext::build(s, error);
  ASSERT_TRUE(tls) << error.message;
  EXPECT_EQ(tls->names(), (std::vector<std::vector<std::string>>{
                              {"a.test", "www.a.test"}, {"*.b.test"}, {"x.b.test"}}));
  EXPECT_EQ(tls->context_for("A.TEST"), &tls->default_context());
  EXPECT_EQ(tls->context_for("y.b.test"), tls->context_for("z.b.test"));
  EXPECT_NE(tls->context_for("y.b.test"), nullptr);
  EXPECT_NE(tls->context_for("x.b.test"), tls->context_for("y.b.test")) << "exact wins";
  EXPECT_EQ(tls->context_for("b.test"), nullptr) << "a wildcard needs its label";
  EXPECT_EQ(tls->context_for("deep.y.b.test"), nullptr) << "one label only";
  EXPECT_EQ(tls->context_for("c.test"), nullptr);
}

TEST(TlsContext, BuildErrorsNameTheKeyAndTheCertificate) {
  testing::TempDir dir;
  make_certificate(dir, "a", "a.test");
  make_certificate(dir, "b", "b.test");
  TlsBuildError error;
  EXPECT_FALSE(TlsContext::build({}, error));
  EXPECT_EQ(error.field, "certificates");

  TlsSettings s;
  s.certificates = {{dir.file("a.pem"), dir.file("a.key")}, {dir.file("b.pem"), dir.file("a.key")}};
  EXPECT_FALSE(TlsContext::build(s, error));
  EXPECT_EQ(error.field, "key_file");
  EXPECT_EQ(error.index, 1);
  EXPECT_NE(error.message.find("does not match"), std::string::npos) << error.message;

  s.certificates = {{dir.file("a.pem"), dir.file("nope.key")}};
  EXPECT_FALSE(TlsContext::build(s, error));
  EXPECT_EQ(error.field, "key_file");
  EXPECT_EQ(error.index, 0);
  EXPECT_NE(error.message.find("cannot read"), std::string::npos) << error.message;

  s.certificates = {{dir.file("a.key"), dir.file("a.key")}};
  EXPECT_FALSE(TlsContext::build(s, error));
  EXPECT_EQ(error.field, "cert_file") << error.message;

  s.certificates = {{dir.file("a.pem"), dir.file("a.key")}};
  s.ciphers = "NOT-A-CIPHER";
  EXPECT_FALSE(TlsContext::build(s, error));
  EXPECT_EQ(error.field, "ciphers");
  s.ciphers.clear();
  s.client_ca_file = dir.file("a.key");  // readable, but no certificate in it
  EXPECT_FALSE(TlsContext::build(s, error));
  EXPECT_EQ(error.field, "client_ca_file");
  s.client_ca_file = dir.file("a.pem");
  EXPECT_TRUE(TlsContext::build(s, error)) << error.message;
}

TEST(TlsContext, HandshakeFailureReasons) {
  namespace asio = boost::asio;
  auto ssl_error = [](int reason) {
    return boost::system::error_code(static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)),
                                     asio::error::get_ssl_category());
  };
  EXPECT_STREQ(tls_handshake_failure_reason(asio::error::operation_aborted, true), "timeout");
  EXPECT_STREQ(tls_handshake_failure_reason(asio::error::eof, false), "eof");
  EXPECT_STREQ(tls_handshake_failure_reason(asio::ssl::error::stream_truncated, false), "eof");
  EXPECT_STREQ(tls_handshake_failure_reason(ssl_error(SSL_R_HTTP_REQUEST), false), "http_request");
  EXPECT_STREQ(
      tls_handshake_failure_reason(ssl_error(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE), false),
      "no_client_certificate");
  EXPECT_STREQ(tls_handshake_failure_reason(ssl_error(SSL_R_CERTIFICATE_VERIFY_FAILED), false),
               "bad_client_certificate");
  EXPECT_STREQ(tls_handshake_failure_reason(ssl_error(SSL_R_TLSV1_ALERT_UNKNOWN_CA), false),
               "certificate_rejected_by_client");
  EXPECT_STREQ(tls_handshake_failure_reason(ssl_error(SSL_R_UNSUPPORTED_PROTOCOL), false),
               "unsupported_version");
  EXPECT_STREQ(tls_handshake_failure_reason(ssl_error(SSL_R_NO_SHARED_CIPHER), false),
               "no_shared_cipher");
  EXPECT_STREQ(tls_handshake_failure_reason(ssl_error(SSL_R_BAD_PACKET_LENGTH), false), "protocol");
  EXPECT_STREQ(tls_handshake_failure_reason(asio::error::host_unreachable, false), "io");
}

}  // namespace
}  // namespace sluice::server
