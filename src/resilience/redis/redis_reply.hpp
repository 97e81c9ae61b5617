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

  static RedisReply failure_of(RedisFailure why, std::string text) {
    RedisReply r;
    r.failure = why;
    r.str = std::move(text);
    return r;
  }
};

// Called exactly once per command, on the Redis I/O thread.
using ReplyCallback = std::function<void(RedisReply)>;

}  // namespace sluice::resilience::redis
