// verify_jwt and JwkSet with tokens signed by the test itself (support/jwt_signer): the three
// algorithms, every claim check with its skew, malformed tokens, and algorithm confusion.
#include <gtest/gtest.h>

#include "security/base64.hpp"
#include "security/jwk_set.hpp"
#include "security/jwt_verifier.hpp"
#include "support/jwt_signer.hpp"

namespace sluice::testing {
namespace {

using security::JwkSet;
using security::JwtError;
using security::JwtPolicy;
using security::verify_jwt;
using Json = nlohmann::json;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
constexpr long long kT = 1'800'000'000;

JwkSet keys_of(const std::string& jwks) {
  auto set = JwkSet::parse(jwks);
  if (auto* e = std::get_if<std::string>(&set)) ADD_FAILURE() << *e;
  return std::get<JwkSet>(std::move(set));
}

const JwkSet& all_keys() {
  static const JwkSet keys = keys_of(test_signer().jwks());
  return keys;
}

JwtError check(const std::string& token, const JwtPolicy& policy = {},
               const JwkSet& keys = all_keys()) {
  return verify_jwt(token, keys, policy, kNow).error;
}

TEST(JwtVerifier, AcceptsEachAlgorithmAndReturnsTheClaims) {
  const auto& s = test_signer();
  for (const char* alg : {"HS256", "RS256", "ES256"}) {
    const Json claims = {{"sub", std::string("u-") + alg}, {"exp", kT + 60}, {"tier", "vip"}};
    for (const char* kid : {"", alg[0] == 'H' ? "hs1" : alg[0] == 'R' ? "rsa1" : "ec1"}) {
      auto r = verify_jwt(s.token(alg, claims, kid), all_keys(), {}, kNow);
      EXPECT_EQ(r.error, JwtError::kNone) << alg << " kid=" << kid << ": " << r.message;
      EXPECT_EQ(r.claims.value("sub", ""), std::string("u-") + alg);
      EXPECT_EQ(r.claims.value("tier", ""), "vip");
    }
  }
}

TEST(JwtVerifier, ATamperedTokenFails) {
  const auto& s = test_signer();
  for (const char* alg : {"HS256", "RS256", "ES256"}) {
    std::string token = s.token(alg, {{"sub", "alice"}, {"exp", kT + 60}});
    // Swap the payload for another user's, keep the signature.
    const auto d1 = token.find('.');
    const auto d2 = token.find('.', d1 + 1);
    const std::string forged = token.substr(0, d1 + 1) +
                               security::encode_base64url(R"({"sub":"admin","exp":1900000000})") +
                               token.substr(d2);
    EXPECT_EQ(check(forged), JwtError::kBadSignature) << alg;
    // Flip one bit of the signature.
    std::string sig = *security::decode_base64url(token.substr(d2 + 1));
    sig[5] = static_cast<char>(sig[5] ^ 1);
    EXPECT_EQ(check(token.substr(0, d2 + 1) + security::encode_base64url(sig)),
              JwtError::kBadSignature)
        << alg;
  }
}

TEST(JwtVerifier, Es256WantsRawSignaturesNotDer) {
  const auto& s = test_signer();
  std::string token = s.token("ES256", {{"sub", "alice"}, {"exp", kT + 60}});
  const auto d2 = token.rfind('.');
  auto raw = *security::decode_base64url(token.substr(d2 + 1));
  ASSERT_EQ(raw.size(), 64u);
  // The same signature in DER (what OpenSSL produces) is not a JWS ES256 signature.
  std::string der = "\x30\x44\x02\x20" + raw.substr(0, 32) + "\x02\x20" + raw.substr(32);
  EXPECT_EQ(check(token.substr(0, d2 + 1) + security::encode_base64url(der)),
            JwtError::kBadSignature);
}

TEST(JwtVerifier, AlgNoneIsRefused) {
  const auto& s = test_signer();
  const Json claims = {{"sub", "alice"}, {"exp", kT + 60}};
  EXPECT_EQ(check(s.token("none", claims)), JwtError::kUnsupportedAlg);
  EXPECT_EQ(check(s.token("None", claims)), JwtError::kUnsupportedAlg);
  EXPECT_EQ(check(s.token("HS512", claims)), JwtError::kUnsupportedAlg);
  // A valid signature with a critical extension nobody here understands.
  EXPECT_EQ(check(s.token("HS256", claims, "", {{"crit", {"exp"}}})), JwtError::kUnsupportedAlg);
}

TEST(JwtVerifier, AnRsaKeyNeverVerifiesAnHs256Token) {
  const auto& s = test_signer();
  const Json claims = {{"sub", "mallory"}, {"exp", kT + 60}};
  // The classic confusion: HMAC keyed with the RSA public key, which is public knowledge.
  const std::string pem = s.rsa_public_pem();
  const auto n = *security::decode_base64url(s.rsa_jwk()["n"].get<std::string>());
  const JwkSet rsa_only = keys_of(Json{{"keys", {s.rsa_jwk()}}}.dump());
  for (const std::string& secret : {pem, n, s.rsa_jwk().dump()}) {
    for (const std::string kid : {"rsa1", ""}) {
      Json header = {{"alg", "HS256"}};
      if (!kid.empty()) header["kid"] = kid;
      const auto token = TestSigner::hs256_with(secret, header, claims);
      EXPECT_EQ(check(token, {}, rsa_only), JwtError::kUnknownKey);
      EXPECT_NE(check(token), JwtError::kNone);
    }
  }
  // And an RS256 header naming the HMAC key's kid finds no RS256 key of that kid.
  EXPECT_EQ(check(s.token("RS256", claims, "hs1")), JwtError::kUnknownKey);
}

TEST(JwtVerifier, ExpiryAndNotBeforeHonourTheSkew) {
  const auto& s = test_signer();
  JwtPolicy p;
  p.clock_skew = std::chrono::seconds(30);
  auto with = [&](Json claims) { return check(s.token("HS256", claims), p); };
  EXPECT_EQ(with({{"sub", "a"}, {"exp", kT - 10}}), JwtError::kNone) << "within the skew";
  EXPECT_EQ(with({{"sub", "a"}, {"exp", kT - 30}}), JwtError::kExpired) << "exp is exclusive";
  EXPECT_EQ(with({{"sub", "a"}, {"exp", kT - 3600}}), JwtError::kExpired);
  EXPECT_EQ(with({{"sub", "a"}, {"exp", kT + 60}, {"nbf", kT + 20}}), JwtError::kNone);
  EXPECT_EQ(with({{"sub", "a"}, {"exp", kT + 60}, {"nbf", kT + 31}}), JwtError::kNotYetValid);
  EXPECT_EQ(with({{"sub", "a"}, {"exp", static_cast<double>(kT) + 0.5}}), JwtError::kNone);
  EXPECT_EQ(with({{"sub", "a"}, {"exp", "tomorrow"}}), JwtError::kMalformed);
  EXPECT_EQ(with({{"sub", "a"}}), JwtError::kExpired) << "exp is required by default";
  p.require_exp = false;
  EXPECT_EQ(with({{"sub", "a"}}), JwtError::kNone);
}

TEST(JwtVerifier, AudienceAndIssuer) {
  const auto& s = test_signer();
  JwtPolicy p;
  p.audiences = {"orders", "billing"};
  p.issuers = {"https://idp.example"};
  auto with = [&](Json claims) {
    claims["exp"] = kT + 60;
    return check(s.token("RS256", claims), p);
  };
  EXPECT_EQ(with({{"aud", "orders"}, {"iss", "https://idp.example"}}), JwtError::kNone);
  EXPECT_EQ(with({{"aud", {"x", "billing"}}, {"iss", "https://idp.example"}}), JwtError::kNone);
  EXPECT_EQ(with({{"aud", "shop"}, {"iss", "https://idp.example"}}), JwtError::kWrongAudience);
  EXPECT_EQ(with({{"aud", {"x", "y"}}, {"iss", "https://idp.example"}}), JwtError::kWrongAudience);
  EXPECT_EQ(with({{"iss", "https://idp.example"}}), JwtError::kWrongAudience);
  EXPECT_EQ(with({{"aud", "orders"}, {"iss", "https://evil.example"}}), JwtError::kWrongIssuer);
  EXPECT_EQ(with({{"aud", "orders"}}), JwtError::kWrongIssuer);
}

TEST(JwtVerifier, MalformedTokens) {
  const auto& s = test_signer();
  const std::string good = s.token("HS256", {{"sub", "a"}, {"exp", kT + 60}});
  for (const std::string& bad :
       {std::string(""), std::string("abc"), std::string("a.b"), good + ".x",
        std::string("!!!.e30.sig"), std::string("e30.e30.sig"), good + "=",
        std::string("W10.e30.") /* header is a list */}) {
    const auto e = check(bad);
    EXPECT_TRUE(e == JwtError::kMalformed) << bad << " -> " << security::jwt_error_detail(e);
  }
  EXPECT_EQ(check(s.token("HS256", {{"sub", "a"}, {"exp", kT + 60}}, "unknown-kid")),
            JwtError::kUnknownKey);
}

TEST(JwkSet, RefusesWeakOrInconsistentKeys) {
  auto error_of = [](const Json& jwks) {
    auto r = JwkSet::parse(jwks.dump());
    auto* e = std::get_if<std::string>(&r);
    return e ? *e : std::string("(accepted)");
  };
  EXPECT_NE(error_of({{"keys", {{{"kty", "oct"}, {"k", security::encode_base64url("short")}}}}})
                .find("shorter than 32 bytes"),
            std::string::npos);
  auto rsa = test_signer().rsa_jwk();
  rsa["alg"] = "HS256";
  EXPECT_NE(error_of({{"keys", {rsa}}}).find("does not fit"), std::string::npos);
  auto ec = test_signer().ec_jwk();
  std::string y = *security::decode_base64url(ec["y"].get<std::string>());
  y[31] = static_cast<char>(y[31] ^ 1);  // no longer on the curve
  ec["y"] = security::encode_base64url(y);
  EXPECT_NE(error_of({{"keys", {ec}}}).find("not a valid P-256"), std::string::npos);
  EXPECT_NE(error_of({{"keys", Json::array()}}).find("no usable"), std::string::npos);
  EXPECT_EQ(std::get<std::string>(JwkSet::parse("{nope")), "not valid JSON");
  // Keys for other uses or algorithms are skipped, not fatal.
  auto enc = test_signer().rsa_jwk();
  enc["use"] = "enc";
  auto parsed = JwkSet::parse(Json{{"keys", {enc, test_signer().oct_jwk()}}}.dump());
  ASSERT_TRUE(std::holds_alternative<JwkSet>(parsed));
  EXPECT_EQ(std::get<JwkSet>(parsed).keys.size(), 1u);
  EXPECT_EQ(std::get<JwkSet>(parsed).skipped, 1);
}

TEST(Base64, RoundTripsAndRefusesNonCanonicalText) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00x"}) {
    EXPECT_EQ(*security::decode_base64url(security::encode_base64url(s)), s);
    EXPECT_EQ(*security::decode_base64(security::encode_base64(s)), s);
  }
  EXPECT_EQ(*security::decode_base64("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(*security::decode_base64("Zm8="), "fo");
  EXPECT_FALSE(security::decode_base64url("Zm8="));  // JWS has no padding
  EXPECT_FALSE(security::decode_base64("Zm9="));     // non-zero leftover bits
  EXPECT_FALSE(security::decode_base64("Z"));
}

}  // namespace
}  // namespace sluice::testing
