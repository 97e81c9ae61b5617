// JwkSet — the verification keys of a JSON Web Key Set (RFC 7517), each bound to the one JWS
// algorithm it may verify: "oct" keys HS256, "RSA" keys RS256, "EC" P-256 keys ES256. Binding
// the algorithm to the key, not to the token, is what defeats algorithm confusion (an RSA public
// key can never be used as an HMAC secret).
//
//   auto set = JwkSet::parse(R"({"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0..."}]})");
//   if (auto* error = std::get_if<std::string>(&set)) fail(*error);
#pragma once

#include <openssl/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sluice::security {

enum class JwsAlg { kHS256, kRS256, kES256 };
std::optional<JwsAlg> parse_jws_alg(std::string_view name);  // nullopt for "none" and the rest
std::string_view to_string(JwsAlg alg);

struct Jwk {
  std::string kid;                 // may be empty
  JwsAlg alg = JwsAlg::kHS256;     // the only algorithm this key verifies
  std::string secret;              // HS256: the raw secret bytes (at least 32)
  std::shared_ptr<EVP_PKEY> pkey;  // RS256 (modulus >= 2048 bits) / ES256 (P-256 point)
};

struct JwkSet {
  std::vector<Jwk> keys;
  int skipped = 0;  // keys of other uses or algorithms (e.g. "use": "enc", PS256), ignored

  // A JWKS document ({"keys": [...]}) or a single JWK. Fails on invalid JSON, on a key that
  // claims a supported algorithm but is malformed or too weak, and when no usable key remains.
  static std::variant<JwkSet, std::string> parse(std::string_view json);
};

}  // namespace sluice::security
