// Redis replies as the rate limiter reads them, from bytes: hiredis's reader limited as every
// connection's is (limit_reply_size), RedisReply::from_hiredis, and TokenBucketScript's reading
// of the script's answer. Regression tests for the redis_reply fuzz target's findings.
#include <hiredis/hiredis.h>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "resilience/redis/redis_reply.hpp"
#include "resilience/redis/token_bucket_script.hpp"

namespace sluice::resilience::redis {
namespace {

// The first reply in `bytes`, or nullopt with `error` set when the reader refuses them.
std::optional<RedisReply> read_reply(const std::string& bytes, std::string* error = nullptr) {
  redisReader* reader = redisReaderCreate();
  limit_reply_size(reader);
  redisReaderFeed(reader, bytes.data(), bytes.size());
  void* raw = nullptr;
  std::optional<RedisReply> out;
  if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
    if (error != nullptr) *error = reader->errstr;
  } else if (raw != nullptr) {
    out = RedisReply::from_hiredis(*static_cast<redisReply*>(raw));
    freeReplyObject(raw);
  }
  redisReaderFree(reader);
  return out;
}

TEST(RedisReply, ReadsTheScriptsAnswer) {
  auto r = read_reply("*4\r\n:1\r\n:19\r\n:2000\r\n:0\r\n");
  ASSERT_TRUE(r);
  auto out = TokenBucketScript::parse(*r);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->granted, 1);
  EXPECT_EQ(out->remaining, 19);
  EXPECT_EQ(out->reset_after_ms, 2000);
  auto d = TokenBucketScript::decision(*out, RateLimit{10, 20});
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.reset_after, std::chrono::milliseconds(2000));
  EXPECT_EQ(d.retry_after.count(), 0);
}

// `*720368547\r\n` made hiredis calloc 5.7 GB before a single element arrived (fuzz finding:
// libFuzzer's out-of-memory at 7,647 executions). Now the reader refuses it as an error, and an
// array of the limit's length is still read.
TEST(RedisReply, AnArrayLongerThanTheLimitIsAReaderErrorNotAnAllocation) {
  std::string error;
  EXPECT_FALSE(read_reply("*720368547\r\n:-1\r\n", &error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(read_reply("*" + std::to_string(kMaxReplyElements + 1) + "\r\n", &error));
  std::string longest = "*" + std::to_string(kMaxReplyElements) + "\r\n";
  for (int i = 0; i < kMaxReplyElements; ++i)
    longest += ":7\r\n";
  auto r = read_reply(longest);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->elements.size(), static_cast<std::size_t>(kMaxReplyElements));
}

// Numbers the script never returns are not an answer (a script error, like a wrong shape).
TEST(RedisReply, ScriptNumbersOutsideTheirDomainAreRefused) {
  for (const char* bytes : {"*4\r\n:-1\r\n:0\r\n:0\r\n:0\r\n", "*4\r\n:0\r\n:-5\r\n:0\r\n:0\r\n",
                            "*4\r\n:0\r\n:0\r\n:-1\r\n:0\r\n", "*4\r\n:0\r\n:0\r\n:0\r\n:-2\r\n"}) {
    auto r = read_reply(bytes);
    ASSERT_TRUE(r) << bytes;
    EXPECT_FALSE(TokenBucketScript::parse(*r)) << bytes;
  }
  auto never = read_reply("*4\r\n:0\r\n:0\r\n:0\r\n:-1\r\n");
  ASSERT_TRUE(never);
  auto out = TokenBucketScript::parse(*never);
  ASSERT_TRUE(out);
  EXPECT_EQ(TokenBucketScript::decision(*out, RateLimit{1, 1}).retry_after,
            std::chrono::nanoseconds::max());
}

// A reset of LLONG_MAX ms overflowed when converted to nanoseconds and added to now (the
// leased path). Times are capped at kMaxMs (10 years), which a steady clock can add.
TEST(RedisReply, HugeScriptTimesAreCappedNotOverflowed) {
  auto r = read_reply("*4\r\n:0\r\n:0\r\n:9223372036854775807\r\n:9223372036854775807\r\n");
  ASSERT_TRUE(r);
  auto out = TokenBucketScript::parse(*r);
  ASSERT_TRUE(out);
  auto d = TokenBucketScript::decision(*out, RateLimit{1, 1});
  EXPECT_EQ(d.reset_after, std::chrono::milliseconds(TokenBucketScript::kMaxMs));
  EXPECT_EQ(d.retry_after, std::chrono::milliseconds(TokenBucketScript::kMaxMs));
  const auto now = std::chrono::steady_clock::now();
  EXPECT_GT(now + d.reset_after, now);
}

}  // namespace
}  // namespace sluice::resilience::redis
