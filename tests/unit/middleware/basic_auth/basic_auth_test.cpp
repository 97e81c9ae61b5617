// basic_auth: the PBKDF2 hash format, the users file (errors with line numbers, tiers), and the
// middleware in a loaded config (401 challenge, user/tier to the Context, reload on change).
#include <gtest/gtest.h>

#include "security/base64.hpp"
#include "security/credentials_table.hpp"
#include "security/password_hash.hpp"
#include "support/resilience_harness.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using security::CredentialsTable;
using security::PasswordHash;

std::string basic(const std::string& user, const std::string& password) {
  return "Basic " + security::encode_base64(user + ":" + password);
}

TEST(PasswordHash, MatchesAnIndependentPbkdf2AndItsOwnOutput) {
  // Made with Python's hashlib (OpenSSL underneath, but an independent formatter):
  //   hashlib.pbkdf2_hmac('sha256', b'password', b'saltsaltsalt', 1000) in base64, no padding.
  auto h = PasswordHash::parse(
      "$pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$sYIePhT5IXESDKvnouJXtE5pTJ6Znbmef4vViYmc9Uc");
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->verify("password"));
  EXPECT_FALSE(h->verify("Password"));
  EXPECT_FALSE(h->verify(""));
  // passlib's adapted base64 ('.' for '+') reads the same.
  auto made = PasswordHash::make("s3cret:with colon", 1000);
  auto again = PasswordHash::parse(made.text());
  ASSERT_TRUE(again) << made.text();
  EXPECT_TRUE(again->verify("s3cret:with colon"));
  EXPECT_FALSE(again->verify("s3cret"));
}

TEST(PasswordHash, RefusesOtherSchemesAndWeakParameters) {
  std::string error;
  EXPECT_FALSE(PasswordHash::parse("$2y$10$abcdefghijklmnopqrstuu", &error));
  EXPECT_NE(error.find("bcrypt"), std::string::npos);
  EXPECT_FALSE(PasswordHash::parse("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", &error));
  EXPECT_FALSE(
      PasswordHash::parse("$pbkdf2-sha256$999$c2FsdHNhbHRzYWx0$" + std::string(43, 'A'), &error));
  EXPECT_NE(error.find("too weak"), std::string::npos);
  EXPECT_FALSE(PasswordHash::parse("$pbkdf2-sha256$1000$c2FsdA$" + std::string(43, 'A'), &error));
  EXPECT_NE(error.find("salt"), std::string::npos);
  EXPECT_FALSE(PasswordHash::parse("$pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$AAAA", &error));
  EXPECT_NE(error.find("key"), std::string::npos);
}

TEST(CredentialsTable, LinesTiersCommentsAndErrors) {
  const auto a = PasswordHash::make("pa", 1000).text();
  const auto b = PasswordHash::make("pb", 1000).text();
  auto parsed = CredentialsTable::parse("# users\n\nalice:" + a + ":vip\r\nbob:" + b + "\n");
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const CredentialsTable>>(parsed))
      << std::get<std::string>(parsed);
  auto table = std::get<std::shared_ptr<const CredentialsTable>>(parsed);
  const auto now = SteadyTime{} + 1h;
  ASSERT_NE(table->find("alice"), nullptr);
  EXPECT_EQ(table->find("alice")->tier, "vip");
  EXPECT_EQ(table->find("bob")->tier, "");
  EXPECT_TRUE(table->check(table->find("alice"), "alice", "pa", now));
  EXPECT_FALSE(table->check(table->find("alice"), "alice", "pb", now));
  EXPECT_FALSE(table->check(nullptr, "carol", "pa", now));
  // A success is remembered for the TTL (60 s by default), a failure never.
  EXPECT_TRUE(table->cached("alice", "pa", now + 59s));
  EXPECT_FALSE(table->cached("alice", "pa", now + 61s));
  EXPECT_FALSE(table->cached("alice", "pb", now));

  auto error_of = [](const std::string& text) {
    auto r = CredentialsTable::parse(text);
    auto* e = std::get_if<std::string>(&r);
    return e ? *e : std::string("(accepted)");
  };
  EXPECT_EQ(error_of("alice:" + a + "\nalice:" + b + "\n"), "line 2: user \"alice\" appears twice");
  EXPECT_EQ(error_of("\nnocolon\n"), "line 2: expected user:hash[:tier]");
  EXPECT_NE(error_of("bob:{SHA}x\n").find("line 1: user \"bob\": not a $pbkdf2-sha256$ hash"),
            std::string::npos);
  EXPECT_NE(error_of("# nobody\n").find("no users"), std::string::npos);
}

struct BasicAuthFixture : ::testing::Test {
  TempDir dir;
  std::string users =
      dir.write("users.txt", "alice:" + PasswordHash::make("wonderland", 1000).text() +
                                 ":vip\nbob:" + PasswordHash::make("builder", 1000).text() + "\n");
  std::string config() const {
    return R"(
routes:
  - name: api
    middlewares:
      - type: basic_auth
        users_file: )" +
           users + R"(
        realm: staff area
        verify_threads: 0
        reload_interval_ms: 1000
        tier_header: X-User-Tier
    handler: { type: respond }
)";
  }
};

TEST_F(BasicAuthFixture, AcceptsKnownUsersAndRefusesOthersWithABasicChallenge) {
  Harness h(config());
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  auto ok = h.get("api", "/",
                  {{"Authorization", basic("alice", "wonderland")}, {"X-User-Tier", "forged"}});
  EXPECT_EQ(ok->status(), 200);
  EXPECT_EQ(ok->ex->context().user(), "alice");
  EXPECT_EQ(ok->ex->context().tier(), "vip");
  EXPECT_EQ(ok->ex->request().header("X-User-Tier"), "vip");
  EXPECT_FALSE(ok->ex->request().has_header("Authorization")) << "the password stays here";
  auto bob =
      h.get("api", "/", {{"Authorization", basic("bob", "builder")}, {"X-User-Tier", "forged"}});
  EXPECT_EQ(bob->ex->context().user(), "bob");
  EXPECT_FALSE(bob->ex->request().has_header("X-User-Tier"));

  for (const auto& [header, detail] : std::vector<std::pair<std::string, std::string>>{
           {"", "basic_auth_missing"},
           {"Bearer abc", "basic_auth_missing"},
           {basic("alice", "wrong"), "basic_auth_invalid"},
           {basic("mallory", "wonderland"), "basic_auth_invalid"},
           {"Basic !!!", "basic_auth_invalid"}}) {
    auto r =
        h.get("api", "/",
              header.empty()
                  ? std::vector<std::pair<std::string, std::string>>{}
                  : std::vector<std::pair<std::string, std::string>>{{"Authorization", header}});
    EXPECT_EQ(r->status(), 401) << header;
    EXPECT_EQ(r->ex->detail(), detail) << header;
    EXPECT_EQ(r->header("WWW-Authenticate"), R"(Basic realm="staff area", charset="UTF-8")");
    EXPECT_EQ(r->ex->context().user(), "");
  }
}

TEST_F(BasicAuthFixture, TheUsersFileIsReloadedWhenItChanges) {
  Harness h(config());
  ASSERT_TRUE(h.errors.empty()) << h.errors[0];
  EXPECT_EQ(h.get("api", "/", {{"Authorization", basic("alice", "wonderland")}})->status(), 200);
  dir.write("users.txt", "alice:" + PasswordHash::make("new password", 1000).text() + "\n");
  h.clock.advance(1001ms);
  EXPECT_EQ(h.get("api", "/", {{"Authorization", basic("alice", "wonderland")}})->status(), 401)
      << "the old password is not served from the cache of the old file";
  EXPECT_EQ(h.get("api", "/", {{"Authorization", basic("alice", "new password")}})->status(), 200);
  EXPECT_EQ(h.get("api", "/", {{"Authorization", basic("bob", "builder")}})->status(), 401);
}

TEST(BasicAuthConfig, ErrorsNameTheKeyAndItsPosition) {
  TempDir dir;
  Harness bad(R"(
routes:
  - name: api
    middlewares:
      - { type: basic_auth, users_file: )" +
              dir.write("u.txt", "alice:plain\n") + R"(, realm: "a\"b" }
    handler: { type: respond }
)");
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_NE(bad.errors[0].find(
                "test.yaml:5:41: routes[0].middlewares[0].users_file: " + dir.file("u.txt") +
                ": line 1: user \"alice\": not a $pbkdf2-sha256$ hash"),
            std::string::npos)
      << bad.errors[0];
  EXPECT_NE(bad.errors[1].find("test.yaml:5:79: routes[0].middlewares[0].realm: must be non-empty"),
            std::string::npos)
      << bad.errors[1];
}

}  // namespace
}  // namespace sluice::testing
