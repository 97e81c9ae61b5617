#include "support/jwt_signer.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdexcept>

#include "security/base64.hpp"

namespace sluice::testing {

namespace {

using security::encode_base64url;

std::string bn_param(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) throw std::runtime_error("bn param");
  std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

std::string padded_bn_param(EVP_PKEY* key, const char* name, int width) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) throw std::runtime_error("bn param");
  std::string out(static_cast<std::size_t>(width), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), width);
  BN_free(bn);
  return out;
}

std::string digest_sign(EVP_PKEY* key, const std::string& input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  std::string sig;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) == 1) {
    sig.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
      sig.clear();
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (sig.empty()) throw std::runtime_error("sign failed");
  return sig;
}

// DER ECDSA-Sig-Value -> JWS's fixed-width r||s, written here rather than taken from the code
// under test, so that a bug there cannot hide itself.
std::string der_to_raw(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return {};
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

std::string hmac(const std::string& secret, const std::string& input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

}  // namespace

TestSigner::TestSigner()
    : secret_("0123456789abcdef0123456789abcdef-test-secret"),
      rsa_(EVP_RSA_gen(2048), EVP_PKEY_free),
      ec_(EVP_EC_gen("P-256"), EVP_PKEY_free) {
  if (!rsa_ || !ec_) throw std::runtime_error("key generation failed");
}

std::string TestSigner::hs256_with(const std::string& secret, const nlohmann::json& header,
                                   const nlohmann::json& claims) {
  const std::string input = encode_base64url(header.dump()) + "." + encode_base64url(claims.dump());
  return input + "." + encode_base64url(hmac(secret, input));
}

std::string TestSigner::token(const std::string& alg, const nlohmann::json& claims,
                              const std::string& kid, const nlohmann::json& extra_header) const {
  nlohmann::json header = {{"alg", alg}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  if (extra_header.is_object()) header.update(extra_header);
  const std::string input = encode_base64url(header.dump()) + "." + encode_base64url(claims.dump());
  std::string sig;
  if (alg == "HS256") {
    sig = hmac(secret_, input);
  } else if (alg == "RS256") {
    sig = digest_sign(rsa_.get(), input);
  } else if (alg == "ES256") {
    sig = der_to_raw(digest_sign(ec_.get(), input));  // JWS: raw r||s
    if (sig.size() != 64) throw std::runtime_error("ES256 conversion failed");
  } else {
    sig = "";  // "none" and the rest: no signature
  }
  return input + "." + encode_base64url(sig);
}

nlohmann::json TestSigner::oct_jwk() const {
  return {{"kty", "oct"}, {"kid", "hs1"}, {"alg", "HS256"}, {"k", encode_base64url(secret_)}};
}

nlohmann::json TestSigner::rsa_jwk() const {
  return {{"kty", "RSA"},
          {"kid", "rsa1"},
          {"use", "sig"},
          {"n", encode_base64url(bn_param(rsa_.get(), OSSL_PKEY_PARAM_RSA_N))},
          {"e", encode_base64url(bn_param(rsa_.get(), OSSL_PKEY_PARAM_RSA_E))}};
}

nlohmann::json TestSigner::ec_jwk() const {
  return {{"kty", "EC"},
          {"kid", "ec1"},
          {"crv", "P-256"},
          {"x", encode_base64url(padded_bn_param(ec_.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32))},
          {"y", encode_base64url(padded_bn_param(ec_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
}

std::string TestSigner::jwks() const {
  return nlohmann::json{{"keys", {oct_jwk(), rsa_jwk(), ec_jwk()}}}.dump();
}

std::string TestSigner::rsa_public_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, rsa_.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return pem;
}

const TestSigner& test_signer() {
  static const TestSigner signer;
  return signer;
}

}  // namespace sluice::testing
