#include "security/jwk_set.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <nlohmann/json.hpp>

#include "security/base64.hpp"

namespace sluice::security {

namespace {

using Json = nlohmann::json;
using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

std::optional<std::string> member(const Json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// A base64url member decoded, or an error naming it.
std::string bytes_of(const Json& jwk, const char* name, std::string& error) {
  auto text = member(jwk, name);
  std::optional<std::string> bytes;
  if (text) bytes = decode_base64url(*text);
  if (!bytes || bytes->empty()) {
    error = std::string("\"") + name + "\" is missing or not base64url";
    return {};
  }
  return *bytes;
}

BnPtr bignum(const std::string& big_endian) {
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(big_endian.data()),
                         static_cast<int>(big_endian.size()), nullptr),
               BN_free);
}

// Builds a public key from OSSL parameters (OpenSSL 3's non-deprecated route).
std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1)
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (pkey == nullptr) return nullptr;
  return std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
}

std::shared_ptr<EVP_PKEY> rsa_key(const Json& jwk, std::string& error) {
  const auto n = bytes_of(jwk, "n", error);
  if (!error.empty()) return nullptr;
  const auto e = bytes_of(jwk, "e", error);
  if (!error.empty()) return nullptr;
  auto bn_n = bignum(n);
  auto bn_e = bignum(e);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  std::shared_ptr<EVP_PKEY> key;
  if (bld != nullptr && bn_n && bn_e &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1)
    key = from_params("RSA", bld);
  OSSL_PARAM_BLD_free(bld);
  if (!key) {
    error = "not a valid RSA public key";
  } else if (EVP_PKEY_get_bits(key.get()) < 2048) {
    error = "RSA keys shorter than 2048 bits are refused";
    key.reset();
  }
  return key;
}

std::shared_ptr<EVP_PKEY> ec_key(const Json& jwk, std::string& error) {
  if (member(jwk, "crv").value_or("") != "P-256") {
    error = "only the P-256 curve is supported (ES256)";
    return nullptr;
  }
  const auto x = bytes_of(jwk, "x", error);
  if (!error.empty()) return nullptr;
  const auto y = bytes_of(jwk, "y", error);
  if (!error.empty()) return nullptr;
  if (x.size() != 32 || y.size() != 32) {
    error = "P-256 coordinates must be 32 bytes each";
    return nullptr;
  }
  std::string point = "\x04" + x + y;  // SEC 1 uncompressed point
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  std::shared_ptr<EVP_PKEY> key;
  if (bld != nullptr &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) ==
          1)
    key = from_params("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  // fromdata does not promise the point is on the curve; the check does.
  bool on_curve = false;
  if (key) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr);
    on_curve = ctx != nullptr && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
  }
  if (!on_curve) {
    error = "not a valid P-256 public key";
    return nullptr;
  }
  return key;
}

// Reads one key. Returns false (no error) for a key that is not for JWS signatures sluice checks.
bool read_key(const Json& jwk, Jwk& out, std::string& error) {
  if (!jwk.is_object()) {
    error = "a key must be a JSON object";
    return false;
  }
  const auto kty = member(jwk, "kty").value_or("");
  const auto use = member(jwk, "use");
  if (use && *use != "sig") return false;
  JwsAlg implied;
  if (kty == "oct")
    implied = JwsAlg::kHS256;
  else if (kty == "RSA")
    implied = JwsAlg::kRS256;
  else if (kty == "EC")
    implied = JwsAlg::kES256;
  else
    return false;
  if (auto alg = member(jwk, "alg")) {
    auto parsed = parse_jws_alg(*alg);
    if (!parsed) return false;  // e.g. PS256 or HS512: not verified by sluice
    if (*parsed != implied) {
      error = "\"alg\": \"" + *alg + "\" does not fit \"kty\": \"" + kty + "\"";
      return false;
    }
  }
  out.alg = implied;
  out.kid = member(jwk, "kid").value_or("");
  if (kty == "oct") {
    out.secret = bytes_of(jwk, "k", error);
    if (error.empty() && out.secret.size() < 32)
      error = "HS256 secrets shorter than 32 bytes are refused (RFC 7518 section 3.2)";
  } else if (kty == "RSA") {
    out.pkey = rsa_key(jwk, error);
  } else {
    out.pkey = ec_key(jwk, error);
  }
  return error.empty();
}

}  // namespace

std::optional<JwsAlg> parse_jws_alg(std::string_view name) {
  if (name == "HS256") return JwsAlg::kHS256;
  if (name == "RS256") return JwsAlg::kRS256;
  if (name == "ES256") return JwsAlg::kES256;
  return std::nullopt;
}

std::string_view to_string(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kHS256:
      return "HS256";
    case JwsAlg::kRS256:
      return "RS256";
    case JwsAlg::kES256:
      return "ES256";
  }
  return "?";
}

std::variant<JwkSet, std::string> JwkSet::parse(std::string_view json) {
  Json doc = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::string("not valid JSON");
  Json list;
  if (doc.is_object() && doc.contains("keys")) {
    list = doc["keys"];
    if (!list.is_array()) return std::string("\"keys\" must be a list");
  } else {
    list = Json::array({doc});
  }
  JwkSet set;
  for (std::size_t i = 0; i < list.size(); ++i) {
    Jwk key;
    std::string error;
    if (read_key(list[i], key, error)) {
      set.keys.push_back(std::move(key));
    } else if (!error.empty()) {
      auto kid = list[i].is_object() ? member(list[i], "kid") : std::nullopt;
      return "keys[" + std::to_string(i) + "]" + (kid ? " (kid \"" + *kid + "\")" : "") + ": " +
             error;
    } else {
      ++set.skipped;
    }
  }
  if (set.keys.empty())
    return std::string("no usable signature key (oct/HS256, RSA/RS256 or EC P-256/ES256)");
  return set;
}

}  // namespace sluice::security
