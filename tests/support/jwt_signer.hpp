// Test tokens signed here with OpenSSL, independently of the verifier under test: HS256, RS256
// and ES256 (with the DER signature OpenSSL makes turned into JWS's raw r||s), and the JWKs that
// publish their keys.
//
//   TestSigner s;                                   // makes an RSA-2048 and a P-256 key once
//   std::string t = s.token("RS256", {{"sub", "alice"}, {"exp", now + 60}}, "rsa1");
//   std::string jwks = s.jwks();                    // {"keys":[oct, RSA, EC]}
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include <openssl/types.h>

namespace sluice::testing {

class TestSigner {
 public:
  // kids: "hs1" (the 32-byte secret), "rsa1", "ec1".
  TestSigner();
  // A compact JWS of `claims`; `alg` HS256/RS256/ES256 signs with that key; the header gets
  // `kid` when not empty. extra_header fields are merged into the header.
  std::string token(const std::string& alg, const nlohmann::json& claims,
                    const std::string& kid = "", const nlohmann::json& extra_header = {}) const;
  // A token signed with HS256 using `secret` as the HMAC key (for confusion attacks).
  static std::string hs256_with(const std::string& secret, const nlohmann::json& header,
                                const nlohmann::json& claims);
  std::string jwks() const;  // all three public keys (and the secret)
  nlohmann::json rsa_jwk() const;
  nlohmann::json ec_jwk() const;
  nlohmann::json oct_jwk() const;
  // The RSA public key in PEM (what a confused verifier would use as an HMAC secret).
  std::string rsa_public_pem() const;
  const std::string& secret() const { return secret_; }

 private:
  std::string secret_;
  std::shared_ptr<EVP_PKEY> rsa_;
  std::shared_ptr<EVP_PKEY> ec_;
};

// The TestSigner shared by a test binary (key generation takes a moment).
const TestSigner& test_signer();

}  // namespace sluice::testing
