#include "security/jws_signature.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>

namespace sluice::security {

namespace {

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

bool verify_hmac(const Jwk& key, std::string_view input, std::string_view signature) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()), bytes(input),
           input.size(), mac, &len) == nullptr)
    return false;
  // The length is public (always 32); the bytes are compared without an early exit, so the time
  // taken does not tell an attacker how many leading bytes of a forged MAC were right.
  return signature.size() == len && CRYPTO_memcmp(mac, signature.data(), len) == 0;
}

bool verify_digest(EVP_PKEY* pkey, std::string_view input, std::string_view signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx, bytes(signature), signature.size(), bytes(input), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

}  // namespace

std::string ecdsa_raw_to_der(std::string_view raw) {
  if (raw.size() != 64) return {};
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(bytes(raw), 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes(raw) + 32, 32, nullptr);
  std::string der;
  if (sig != nullptr && r != nullptr && s != nullptr && ECDSA_SIG_set0(sig, r, s) == 1) {
    r = s = nullptr;  // owned by sig now
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(sig, &out);
    if (len > 0) der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(len));
    OPENSSL_free(out);
  }
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(sig);
  return der;
}

std::string ecdsa_der_to_raw(std::string_view der) {
  const unsigned char* p = bytes(der);
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return {};
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  const bool ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32 &&
                  BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  return ok ? raw : std::string();
}

bool verify_jws_signature(const Jwk& key, std::string_view signing_input,
                          std::string_view signature) {
  switch (key.alg) {
    case JwsAlg::kHS256:
      return !key.secret.empty() && verify_hmac(key, signing_input, signature);
    case JwsAlg::kRS256:
      return key.pkey && verify_digest(key.pkey.get(), signing_input, signature);
    case JwsAlg::kES256: {
      if (!key.pkey) return false;
      const std::string der = ecdsa_raw_to_der(signature);
      return !der.empty() && verify_digest(key.pkey.get(), signing_input, der);
    }
  }
  return false;
}

}  // namespace sluice::security
