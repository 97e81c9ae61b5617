// libFuzzer target: bytes from Redis, as the rate limiter reads them. hiredis's reader (the
// parser redisAsyncContext uses) takes the input in pieces whose sizes the first byte picks;
// each whole reply is copied by RedisReply::from_hiredis, then read the way the limiter reads a
// script answer (the reader limited as RedisConnection limits it): TokenBucketScript::parse,
// is_noscript, and the per-request decision, whose times are added to a clock reading as the leased
// path does. UBSan makes an overflow there a crash.
//
//   make fuzz-build && build-fuzz/redis_reply_fuzz tests/fuzz/corpus/redis_reply
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "resilience/redis/redis_reply.hpp"
#include "resilience/redis/token_bucket_script.hpp"

namespace {

using sluice::resilience::RateLimit;
using sluice::resilience::redis::RedisReply;
using sluice::resilience::redis::TokenBucketScript;

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "redis_reply_fuzz: %s\n", what);
  std::abort();
}

// Nesting of the copy; hiredis bounds it (REDIS_READER_STACK) and the copy must follow.
std::size_t depth(const RedisReply& r) {
  std::size_t d = 0;
  for (const auto& e : r.elements)
    d = std::max(d, depth(e));
  return d + 1;
}

void use(const RedisReply& reply) {
  check(reply.ok() || reply.is_error_reply(), "a reply from bytes is never a failure");
  check(depth(reply) <= 10, "depth(reply) <= 10");
  if (TokenBucketScript::is_noscript(reply)) check(!reply.ok(), "NOSCRIPT is an error reply");
  const auto out = TokenBucketScript::parse(reply);
  if (!out) return;
  check(out->granted >= 0 && out->remaining >= 0 && out->reset_after_ms >= 0 &&
            out->retry_after_ms >= -1,
        "parse keeps only the script's domain");
  const auto d = TokenBucketScript::decision(*out, RateLimit{10, 20});
  check(d.allowed == (out->granted > 0), "allowed == granted > 0");
  check(d.reset_after.count() >= 0 && d.retry_after.count() >= 0, "times are not negative");
  // What the leased path does with them: a steady clock reading a year after boot plus the time.
  const auto now = std::chrono::steady_clock::time_point(std::chrono::hours(24 * 366));
  const auto reset_at = now + TokenBucketScript::duration_of_ms(out->reset_after_ms);
  check(reset_at >= now, "reset_at >= now");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = (data[0] % 16) + 1;
  ++data;
  --size;
  redisReader* reader = redisReaderCreate();
  sluice::resilience::redis::limit_reply_size(reader);  // as every connection's reader is
  for (std::size_t at = 0; at < size; at += piece) {
    const std::size_t n = std::min(piece, size - at);
    if (redisReaderFeed(reader, reinterpret_cast<const char*>(data + at), n) != REDIS_OK) break;
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader, &reply) != REDIS_OK) goto done;  // a protocol error
      if (reply == nullptr) break;                                     // needs more bytes
      use(RedisReply::from_hiredis(*static_cast<redisReply*>(reply)));
      freeReplyObject(reply);
    }
  }
done:
  redisReaderFree(reader);
  return 0;
}
