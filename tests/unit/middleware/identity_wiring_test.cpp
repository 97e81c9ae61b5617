// What the authenticated user and tier feed: rate_limit keys `user` and `tier` (one bucket per
// value, anonymous requests share "-") and fallback rules on `user_tier` without a header.
#include <gtest/gtest.h>

#include "support/jwt_signer.hpp"
#include "support/resilience_harness.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

std::string bearer(const std::string& sub, const std::string& plan) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return "Bearer " +
         test_signer().token("HS256", {{"sub", sub}, {"plan", plan}, {"exp", now + 300}});
}

TEST(IdentityWiring, RateLimitKeysUserAndTier) {
  TempDir dir;
  const auto jwks = dir.write("jwks.json", test_signer().jwks());
  Harness h(R"(
routes:
  - name: api
    middlewares:
      - { type: jwt, jwks_file: )" +
            jwks + R"(, tier_claim: plan, allow_missing: true }
      - type: rate_limit
        limits:
          - { name: per_user, key: user, rate: 0.001, burst: 2 }
          - { name: per_tier, key: tier, rate: 0.001, burst: 3 }
    handler: { type: respond }
)");
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto status = [&](const std::string& auth) {
    return h.get("api", "/", {{"Authorization", auth}})->status();
  };
  // Same client address throughout: only the identity separates the buckets.
  EXPECT_EQ(status(bearer("alice", "gold")), 200);
  EXPECT_EQ(status(bearer("alice", "gold")), 200);
  EXPECT_EQ(status(bearer("alice", "gold")), 429) << "alice's own bucket (2)";
  EXPECT_EQ(status(bearer("bob", "gold")), 200) << "bob's bucket is full; gold has 1 left";
  EXPECT_EQ(status(bearer("carol", "gold")), 429) << "the gold tier's bucket (3) is spent";
  EXPECT_EQ(status(bearer("dave", "free")), 200) << "another tier, another bucket";
  EXPECT_EQ(status(""), 200);
  EXPECT_EQ(status(""), 200);
  EXPECT_EQ(status(""), 429) << "anonymous requests share the user \"-\"";
}

TEST(IdentityWiring, FallbackUserTierRuleReadsTheAuthenticatedTier) {
  TempDir dir;
  const auto jwks = dir.write("jwks.json", test_signer().jwks());
  Harness h(R"(
routes:
  - name: api
    middlewares:
      - type: fallback
        fallbacks:
          - { name: vip, kind: static, body: "for vips", when: { user_tier: { in: [vip] } } }
          - { name: others, kind: static, status: 503, body: "sorry", when: {} }
      - { type: jwt, jwks_file: )" +
            jwks + R"(, tier_claim: plan, allow_missing: true }
    handler: { type: respond }
)");
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  h.handler.status = 500;
  auto vip = h.get("api", "/", {{"Authorization", bearer("alice", "vip")}});
  EXPECT_EQ(vip->header("X-Sluice-Fallback"), "vip");
  EXPECT_EQ(vip->body(), "for vips");
  // A client saying it is a vip in a header, or being user "vip", is not the tier.
  auto claims = h.get("api", "/", {{"X-User-Tier", "vip"}});
  EXPECT_EQ(claims->header("X-Sluice-Fallback"), "others");
  auto named = h.get("api", "/", {{"Authorization", bearer("vip", "free")}});
  EXPECT_EQ(named->header("X-Sluice-Fallback"), "others");
}

}  // namespace
}  // namespace sluice::testing
