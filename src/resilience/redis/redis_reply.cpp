#include "resilience/redis/redis_reply.hpp"

#include <hiredis/hiredis.h>

namespace sluice::resilience::redis {
namespace {

// hiredis's own reply functions (static in hiredis.c), taken from a reader that uses them.
const redisReplyObjectFunctions& default_functions() {
  static const redisReplyObjectFunctions functions = [] {
    redisReader* probe = redisReaderCreate();
    const redisReplyObjectFunctions copy = *probe->fn;
    redisReaderFree(probe);
    return copy;
  }();
  return functions;
}

void* create_limited_array(const redisReadTask* task, int elements) {
  if (elements > kMaxReplyElements) return nullptr;  // hiredis: "Out of memory", a reader error
  return default_functions().createArray(task, elements);
}

const redisReplyObjectFunctions& limited_functions() {
  static const redisReplyObjectFunctions functions = [] {
    redisReplyObjectFunctions f = default_functions();
    f.createArray = &create_limited_array;
    return f;
  }();
  return functions;
}

}  // namespace

void limit_reply_size(redisReader* reader) {
  // hiredis only reads through the pointer; the table lives as long as the program.
  reader->fn = const_cast<redisReplyObjectFunctions*>(&limited_functions());
}

RedisReply RedisReply::from_hiredis(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Type::kArray;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i)
        out.elements.push_back(from_hiredis(*r.element[i]));
      break;
    default:
      out.type = Type::kNil;
  }
  return out;
}

}  // namespace sluice::resilience::redis
