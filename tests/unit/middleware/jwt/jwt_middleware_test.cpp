// The jwt middleware in a loaded config: 401s with their challenge and stable details, claims to
// the Context and to upstream headers, cookies, allow_missing, key-file reloads, config errors.
#include <gtest/gtest.h>

#include "support/jwt_signer.hpp"
#include "support/resilience_harness.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

long long now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string config(const std::string& jwks_path, const std::string& extra = "") {
  return R"(
routes:
  - name: api
    middlewares:
      - type: jwt
        jwks_file: )" +
         jwks_path + R"(
        audiences: [orders]
        tier_claim: plan
        user_header: X-User
        tier_header: X-User-Tier
        reload_interval_ms: 1000
)" + extra +
         R"(    handler: { type: respond }
)";
}

struct JwtFixture : ::testing::Test {
  TempDir dir;
  std::string jwks = dir.write("jwks.json", test_signer().jwks());
  std::string bearer(const std::string& alg, Json claims) {
    if (!claims.contains("exp")) claims["exp"] = now_s() + 300;
    if (!claims.contains("aud")) claims["aud"] = "orders";
    return "Bearer " + test_signer().token(alg, claims);
  }
};

TEST_F(JwtFixture, AValidTokenSetsUserTierAndUpstreamHeaders) {
  Harness h(config(jwks));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto call = h.get("api", "/",
                    {{"Authorization", bearer("ES256", {{"sub", "alice"}, {"plan", "vip"}})},
                     {"X-User", "forged"},
                     {"X-User-Tier", "forged"}});
  EXPECT_EQ(call->status(), 200);
  EXPECT_EQ(call->ex->context().user(), "alice");
  EXPECT_EQ(call->ex->context().tier(), "vip");
  EXPECT_EQ(call->ex->request().header("X-User"), "alice");
  EXPECT_EQ(call->ex->request().header("X-User-Tier"), "vip");
  EXPECT_TRUE(call->ex->request().has_header("Authorization")) << "forwarded by default";
  // A token without the tier claim: no tier, and the client's header does not survive.
  auto bob = h.get("api", "/",
                   {{"Authorization", bearer("RS256", {{"sub", "bob"}})}, {"X-User-Tier", "vip"}});
  EXPECT_EQ(bob->status(), 200);
  EXPECT_EQ(bob->ex->context().tier(), "");
  EXPECT_FALSE(bob->ex->request().has_header("X-User-Tier"));
  EXPECT_NE(h.metrics_text().find(
                R"(sluice_auth_decisions_total{middleware="jwt",result="allowed",type="jwt"} 2)"),
            std::string::npos);
}

TEST_F(JwtFixture, RefusalsAre401WithABearerChallengeAndStableDetails) {
  Harness h(config(jwks));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto missing = h.get("api", "/", {{"X-User", "alice"}});
  EXPECT_EQ(missing->status(), 401);
  EXPECT_EQ(missing->header("WWW-Authenticate"), R"(Bearer realm="sluice")");
  EXPECT_EQ(missing->ex->detail(), "jwt_missing");
  EXPECT_EQ(Json::parse(missing->body())["error"], "jwt_missing");
  EXPECT_EQ(missing->ex->context().user(), "");
  EXPECT_EQ(h.get("api", "/", {{"Authorization", "Basic YTpi"}})->ex->detail(), "jwt_missing");

  const std::pair<Json, std::string> cases[] = {
      {{{"sub", "a"}, {"exp", now_s() - 3600}}, "jwt_expired"},
      {{{"sub", "a"}, {"nbf", now_s() + 3600}}, "jwt_not_yet_valid"},
      {{{"sub", "a"}, {"aud", "shop"}}, "jwt_wrong_audience"},
      {{{"plan", "vip"}}, "jwt_no_user"},
  };
  for (const auto& [claims, detail] : cases) {
    auto r = h.get("api", "/", {{"Authorization", bearer("HS256", claims)}});
    EXPECT_EQ(r->status(), 401) << detail;
    EXPECT_EQ(r->ex->detail(), detail);
    EXPECT_EQ(Json::parse(r->body())["error"], detail);
    EXPECT_EQ(r->header("WWW-Authenticate"), R"(Bearer realm="sluice", error="invalid_token")");
  }
  auto none =
      h.get("api", "/",
            {{"Authorization",
              "Bearer " + test_signer().token(
                              "none", {{"sub", "a"}, {"aud", "orders"}, {"exp", now_s() + 60}})}});
  EXPECT_EQ(none->ex->detail(), "jwt_unsupported_alg");
  EXPECT_EQ(h.get("api", "/", {{"Authorization", "Bearer not-a-token"}})->ex->detail(),
            "jwt_malformed");
  EXPECT_NE(
      h.metrics_text().find(
          R"(sluice_auth_decisions_total{middleware="jwt",result="jwt_expired",type="jwt"} 1)"),
      std::string::npos);
}

TEST_F(JwtFixture, CookieAllowMissingAndForwardToken) {
  Harness h(config(jwks,
                   "        cookie: session\n        allow_missing: true\n"
                   "        forward_token: false\n"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  const std::string token = bearer("HS256", {{"sub", "carol"}}).substr(7);
  auto by_cookie = h.get("api", "/", {{"Cookie", "theme=dark; session=" + token + "; x=1"}});
  EXPECT_EQ(by_cookie->status(), 200);
  EXPECT_EQ(by_cookie->ex->context().user(), "carol");
  EXPECT_EQ(by_cookie->ex->request().header("Cookie"), "theme=dark; x=1")
      << "forward_token: false keeps the token cookie from the upstream, not the others";
  auto only_cookie = h.get("api", "/", {{"Cookie", "session=" + token}});
  EXPECT_EQ(only_cookie->ex->context().user(), "carol");
  EXPECT_FALSE(only_cookie->ex->request().has_header("Cookie"));
  auto by_header = h.get("api", "/", {{"Authorization", "bearer " + token}});
  EXPECT_EQ(by_header->ex->context().user(), "carol");
  EXPECT_FALSE(by_header->ex->request().has_header("Authorization"));
  auto anonymous = h.get("api", "/", {{"X-User", "forged"}});
  EXPECT_EQ(anonymous->status(), 200);
  EXPECT_EQ(anonymous->ex->context().user(), "");
  EXPECT_FALSE(anonymous->ex->request().has_header("X-User"));
  EXPECT_EQ(h.get("api", "/", {{"Authorization", "Bearer x.y.z"}})->status(), 401)
      << "allow_missing does not let a bad token through";
}

TEST_F(JwtFixture, AnotherHeaderCarriesTheBareToken) {
  Harness h(config(jwks, "        header: X-Api-Token\n"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  const std::string token = bearer("ES256", {{"sub", "erin"}}).substr(7);
  EXPECT_EQ(h.get("api", "/", {{"X-Api-Token", token}})->ex->context().user(), "erin");
  EXPECT_EQ(h.get("api", "/", {{"Authorization", "Bearer " + token}})->ex->detail(), "jwt_missing");
}

TEST_F(JwtFixture, TheKeyFileIsReloadedWhenItChanges) {
  Harness h(config(jwks));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  const auto rs = bearer("RS256", {{"sub", "dave"}});
  EXPECT_EQ(h.get("api", "/", {{"Authorization", rs}})->status(), 200);
  // The RSA key is withdrawn: not seen before the interval, seen after it.
  dir.write("jwks.json", Json{{"keys", {test_signer().ec_jwk()}}}.dump());
  EXPECT_EQ(h.get("api", "/", {{"Authorization", rs}})->status(), 200);
  h.clock.advance(1001ms);
  auto after = h.get("api", "/", {{"Authorization", rs}});
  EXPECT_EQ(after->status(), 401);
  EXPECT_EQ(after->ex->detail(), "jwt_unknown_key");
  // A broken file keeps the previous keys serving and counts an error.
  dir.write("jwks.json", "{ broken");
  h.clock.advance(1001ms);
  EXPECT_EQ(h.get("api", "/", {{"Authorization", bearer("ES256", {{"sub", "e"}})}})->status(), 200);
  const auto m = h.metrics_text();
  EXPECT_NE(m.find(R"(sluice_auth_file_reloads_total{middleware="jwt",result="ok",type="jwt"} 1)"),
            std::string::npos)
      << m;
  EXPECT_NE(
      m.find(R"(sluice_auth_file_reloads_total{middleware="jwt",result="error",type="jwt"} 1)"),
      std::string::npos);
}

TEST_F(JwtFixture, SteppingAsideStillRemovesClientIdentityHeaders) {
  Harness h(config(jwks, "        rollout: { percent: 0 }\n"));
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto r = h.get("api", "/", {{"X-User", "forged"}, {"X-User-Tier", "vip"}});
  EXPECT_EQ(r->status(), 200) << "left out by the rollout: no token needed";
  EXPECT_EQ(r->ex->context().user(), "");
  EXPECT_FALSE(r->ex->request().has_header("X-User"));
  EXPECT_FALSE(r->ex->request().has_header("X-User-Tier"));
}

TEST(JwtConfig, ErrorsNameTheKeyAndItsPosition) {
  TempDir dir;
  Harness missing(config(dir.file("absent.json")));
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_NE(missing.errors[0].find("test.yaml:6:20: routes[0].middlewares[0].jwks_file: "),
            std::string::npos)
      << missing.errors[0];
  EXPECT_NE(missing.errors[0].find("cannot be read"), std::string::npos);
  Harness weak(config(dir.write("weak.json", R"({"keys":[{"kty":"oct","k":"c2hvcnQ"}]})")));
  ASSERT_EQ(weak.errors.size(), 1u);
  EXPECT_NE(weak.errors[0].find("keys[0]: HS256 secrets shorter than 32 bytes"), std::string::npos)
      << weak.errors[0];
  Harness none(R"(
routes:
  - name: api
    middlewares: [{ type: jwt, audiences: [a] }]
    handler: { type: respond }
)");
  ASSERT_FALSE(none.errors.empty());
  EXPECT_NE(none.errors[0].find("jwks_file: is required"), std::string::npos) << none.errors[0];
}

}  // namespace
}  // namespace sluice::testing
