// RedisReply — a hiredis reply copied into plain C++ values, or why there is no reply.
//
//   client.execute({"PING"}, [](RedisReply r) {
//     if (r.ok()) use(r.str); else if (r.failed()) count(r.failure); else log(r.str);
//   });
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

struct redisReply;  // hiredis
struct redisReader;

namespace sluice::resilience::redis {

// Why a command has no answer from Redis.
enum class RedisFailure {
  kNone,        // Redis answered (the answer may be an error reply: look at `type`)
  kTimeout,     // no answer within the command timeout; a late answer is dropped
  kConnection,  // not connected, connection lost, handshake failed, or the client is stopping
};

struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray, kError };

  RedisFailure failure = RedisFailure::kNone;
  Type type = Type::kNil;
  long long integer = 0;
  std::string str;  // string, status or error text; for a failure, what went wrong
  std::vector<RedisReply> elements;

  // Redis answered and the answer is not an error reply.
  bool ok() const { return failure == RedisFailure::kNone && type != Type::kError; }
  // No answer at all (timeout or connection).
  bool failed() const { return failure != RedisFailure::kNone; }
  bool is_error_reply() const { return failure == RedisFailure::kNone && type == Type::kError; }

  // hiredis's parsed reply, copied (redis_reply.cpp; the redis_reply fuzz target feeds it).
  static RedisReply from_hiredis(const redisReply& r);

  static RedisReply failure_of(RedisFailure why, std::string text) {
    RedisReply r;
    r.failure = why;
    r.str = std::move(text);
    return r;
  }
};

// The most elements a reply array may announce. hiredis 0.14 allocates the element table as
// soon as it reads `*<count>`, so a broken or hostile peer could make it calloc gigabytes with a
// dozen bytes; the limiter's longest reply has 4. Found by tests/fuzz/redis_reply_fuzz.cpp.
inline constexpr int kMaxReplyElements = 1024;

// Makes `reader` refuse (as a protocol error: "Out of memory") an array longer than
// kMaxReplyElements. Called on every connection's reader.
void limit_reply_size(redisReader* reader);

// Called exactly once per command, on the Redis I/O thread.
using ReplyCallback = std::function<void(RedisReply)>;

}  // namespace sluice::resilience::redis
