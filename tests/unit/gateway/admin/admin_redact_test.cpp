// Secret redaction for GET /config, and the obs-fold scan of request heads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/http_text.hpp"
#include "gateway/admin/redact.hpp"

namespace sluice::gateway {
namespace {

TEST(Redact, SecretKeysAtAnyDepthLoseTheirValuesAndNothingElseDoes) {
  auto config = nlohmann::json::parse(R"({
    "admin": {"token": "t1", "listen": "127.0.0.1:9901"},
    "tracing": {"headers": {"Authorization": "Bearer t2", "X-Api-Key": "t3", "X-Team": "blue"}},
    "routes": [{"middlewares": [{"type": "rate_limit", "key": "client_ip",
                 "redis": {"password": "t4", "password_env": "REDIS_PW", "address": "r:6379"}},
                {"type": "jwt", "secret": "t5", "hmac_keys": ["k"], "client_secret": 7}]}],
    "auth": {"credentials": {"alice": "t6", "nested": {"bob": "t7"}}},
    "cookie_name": "sid"
  })");
  redact_secrets(config);
  const std::string text = config.dump();
  for (const char* secret : {"t1", "t2", "t3", "t4", "REDIS_PW", "t5", "t6", "t7"}) {
    EXPECT_EQ(text.find('"' + std::string(secret) + '"'), std::string::npos) << secret;
  }
  EXPECT_EQ(config["admin"]["token"], "<redacted>");
  EXPECT_EQ(config["admin"]["listen"], "127.0.0.1:9901");
  EXPECT_EQ(config["tracing"]["headers"]["X-Team"], "blue");
  const auto& limiter = config["routes"][0]["middlewares"][0];
  EXPECT_EQ(limiter["key"], "client_ip") << "a limiter key is not a secret";
  EXPECT_EQ(limiter["redis"]["address"], "r:6379");
  EXPECT_EQ(config["routes"][0]["middlewares"][1]["client_secret"], "<redacted>");
  EXPECT_EQ(config["auth"]["credentials"]["nested"]["bob"], "<redacted>");
}

TEST(Redact, SecretNames) {
  for (const char* k : {"token", "admin_token", "Password", "password_env", "X-Auth-Token",
                        "Proxy-Authorization", "Cookie", "api-key", "private_key", "SECRET"})
    EXPECT_TRUE(is_secret_key(k)) << k;
  for (const char* k : {"key", "key_headers", "listen", "address", "headers", "env", "user"})
    EXPECT_FALSE(is_secret_key(k)) << k;
}

TEST(HttpText, FoldedLinesAreFoundAnywhereInTheHead) {
  auto folded = [](std::string_view s) { return detail::has_folded_line(s.data(), s.size()); };
  EXPECT_FALSE(folded("GET / HTTP/1.1\r\nHost: x\r\nA: 1 \t 2\r\n\r\n"));
  EXPECT_TRUE(folded("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n 2\r\n\r\n"));
  EXPECT_TRUE(folded("GET / HTTP/1.1\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n"));
  EXPECT_TRUE(folded("GET / HTTP/1.1\r\n Host: x\r\n\r\n"));
  EXPECT_FALSE(folded("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(folded(""));
}

}  // namespace
}  // namespace sluice::gateway
