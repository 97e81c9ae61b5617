// verify_jwt — checks a compact JWS token (RFC 7519) against a key set and a policy: the
// signature (with the algorithm the key is bound to; "none" and unknown algorithms refused),
// then exp / nbf (with a clock skew), aud and iss. Returns the claims or a stable reason.
//
//   JwtPolicy policy{.audiences = {"api"}, .issuers = {"https://idp"}};
//   auto r = verify_jwt(token, keys, policy, std::chrono::system_clock::now());
//   if (r.error == JwtError::kNone) use(r.claims["sub"]);
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "security/jwk_set.hpp"

namespace sluice::security {

struct JwtPolicy {
  std::vector<std::string> audiences;  // the token's aud must contain one of these (if any)
  std::vector<std::string> issuers;    // the token's iss must be one of these (if any)
  std::chrono::seconds clock_skew{60};
  bool require_exp = true;  // a token without exp never expires: refused unless set false
};

// Why a token was refused; each value has a stable detail string (jwt_error_detail).
enum class JwtError {
  kNone,
  kMalformed,       // jwt_malformed: not three base64url parts, not JSON objects, bad claim types
  kUnsupportedAlg,  // jwt_unsupported_alg: "none", an unknown alg, or "crit" extensions
  kUnknownKey,      // jwt_unknown_key: no key of the token's kid and algorithm
  kBadSignature,    // jwt_bad_signature
  kExpired,         // jwt_expired: exp (+ skew) is past, or exp missing while required
  kNotYetValid,     // jwt_not_yet_valid: nbf (- skew) is in the future
  kWrongAudience,   // jwt_wrong_audience
  kWrongIssuer,     // jwt_wrong_issuer
};
std::string_view jwt_error_detail(JwtError e);

struct JwtResult {
  JwtError error = JwtError::kNone;
  std::string message;  // for the client and the log; never contains the token
  nlohmann::json claims;
};

JwtResult verify_jwt(std::string_view token, const JwkSet& keys, const JwtPolicy& policy,
                     std::chrono::system_clock::time_point now);

}  // namespace sluice::security
