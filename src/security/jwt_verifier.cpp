#include "security/jwt_verifier.hpp"

#include <algorithm>
#include <cmath>

#include "security/base64.hpp"
#include "security/jws_signature.hpp"

namespace sluice::security {

namespace {

using Json = nlohmann::json;

JwtResult fail(JwtError e, std::string message) {
  JwtResult r;
  r.error = e;
  r.message = std::move(message);
  return r;
}

std::optional<Json> json_object(std::string_view b64) {
  auto text = decode_base64url(b64);
  if (!text) return std::nullopt;
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// A NumericDate (seconds since the epoch, possibly fractional); nullopt when absent.
// Sets `bad` when present but not a number.
std::optional<double> numeric_date(const Json& claims, const char* name, bool& bad) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number() || !std::isfinite(it->get<double>())) {
    bad = true;
    return std::nullopt;
  }
  return it->get<double>();
}

bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

}  // namespace

std::string_view jwt_error_detail(JwtError e) {
  switch (e) {
    case JwtError::kNone:
      return "";
    case JwtError::kMalformed:
      return "jwt_malformed";
    case JwtError::kUnsupportedAlg:
      return "jwt_unsupported_alg";
    case JwtError::kUnknownKey:
      return "jwt_unknown_key";
    case JwtError::kBadSignature:
      return "jwt_bad_signature";
    case JwtError::kExpired:
      return "jwt_expired";
    case JwtError::kNotYetValid:
      return "jwt_not_yet_valid";
    case JwtError::kWrongAudience:
      return "jwt_wrong_audience";
    case JwtError::kWrongIssuer:
      return "jwt_wrong_issuer";
  }
  return "jwt_invalid";
}

JwtResult verify_jwt(std::string_view token, const JwkSet& keys, const JwtPolicy& policy,
                     std::chrono::system_clock::time_point now) {
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return fail(JwtError::kMalformed, "the token is not three dot-separated parts");
  auto header = json_object(token.substr(0, dot1));
  if (!header) return fail(JwtError::kMalformed, "the token header is not a base64url JSON object");
  auto signature = decode_base64url(token.substr(dot2 + 1));
  if (!signature) return fail(JwtError::kMalformed, "the signature is not base64url");

  // The algorithm named by the token only selects among keys already bound to an algorithm:
  // "none" and anything else unknown is refused before any key is looked at.
  auto alg_it = header->find("alg");
  if (alg_it == header->end() || !alg_it->is_string())
    return fail(JwtError::kMalformed, "the token header has no alg");
  const auto alg = parse_jws_alg(alg_it->get<std::string>());
  if (!alg)
    return fail(JwtError::kUnsupportedAlg,
                "algorithm \"" + alg_it->get<std::string>() + "\" is not accepted");
  // RFC 7515 section 4.1.11: a recipient that does not understand a critical extension must
  // refuse the token; sluice understands none.
  if (header->contains("crit"))
    return fail(JwtError::kUnsupportedAlg, "critical header extensions are not supported");
  std::optional<std::string> kid;
  if (auto it = header->find("kid"); it != header->end()) {
    if (!it->is_string()) return fail(JwtError::kMalformed, "kid must be a string");
    kid = it->get<std::string>();
  }

  const std::string_view signing_input = token.substr(0, dot2);
  bool candidate = false;
  bool verified = false;
  for (const auto& key : keys.keys) {
    if (key.alg != *alg || (kid && !key.kid.empty() && key.kid != *kid)) continue;
    candidate = true;
    if (verify_jws_signature(key, signing_input, *signature)) {
      verified = true;
      break;
    }
  }
  if (!candidate)
    return fail(JwtError::kUnknownKey, "no " + std::string(to_string(*alg)) + " key" +
                                           (kid ? " with kid \"" + *kid + "\"" : std::string()));
  if (!verified) return fail(JwtError::kBadSignature, "the signature does not verify");

  // Claims are only read once the signature holds.
  auto claims = json_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims) return fail(JwtError::kMalformed, "the claims are not a base64url JSON object");
  const double t = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double skew = static_cast<double>(policy.clock_skew.count());
  bool bad = false;
  const auto exp = numeric_date(*claims, "exp", bad);
  const auto nbf = numeric_date(*claims, "nbf", bad);
  if (bad) return fail(JwtError::kMalformed, "exp and nbf must be numbers");
  if (!exp && policy.require_exp) return fail(JwtError::kExpired, "the token has no exp");
  if (exp && t >= *exp + skew) return fail(JwtError::kExpired, "the token has expired");
  if (nbf && t < *nbf - skew) return fail(JwtError::kNotYetValid, "the token is not valid yet");

  if (!policy.issuers.empty()) {
    auto it = claims->find("iss");
    if (it == claims->end() || !it->is_string() ||
        !contains(policy.issuers, it->get<std::string>()))
      return fail(JwtError::kWrongIssuer, "the token's issuer is not accepted");
  }
  if (!policy.audiences.empty()) {
    // aud is one string or a list of strings (RFC 7519 section 4.1.3).
    bool match = false;
    if (auto it = claims->find("aud"); it != claims->end()) {
      if (it->is_string()) {
        match = contains(policy.audiences, it->get<std::string>());
      } else if (it->is_array()) {
        for (const auto& a : *it)
          match = match || (a.is_string() && contains(policy.audiences, a.get<std::string>()));
      }
    }
    if (!match) return fail(JwtError::kWrongAudience, "the token is not for this audience");
  }
  JwtResult ok;
  ok.claims = std::move(*claims);
  return ok;
}

}  // namespace sluice::security
