// Reading a Redis stream entry: the value of one field in the [field, value, ...] array that
// XRANGE, XREADGROUP and XAUTOCLAIM give for each entry. Shared by the Redis queue's files
// (redis_stream_storage.cpp, _leases.cpp, _dead_letters.cpp).
//
//   const RedisReply* r = entry_field(entry.elements[1], "r");   // null when absent
#pragma once

#include <cstddef>
#include <string_view>

#include "resilience/redis/redis_reply.hpp"

namespace sluice::queue {

inline const resilience::redis::RedisReply* entry_field(const resilience::redis::RedisReply& fields,
                                                        std::string_view name) {
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
    if (fields.elements[i].str == name) return &fields.elements[i + 1];
  return nullptr;
}

}  // namespace sluice::queue
