#include "resilience/key_table.hpp"

#include <bit>

namespace sluice::resilience::key_table_detail {

size_t effective_shards(size_t max_keys, size_t requested) {
  const size_t cap = std::max<size_t>(1, std::min(max_keys, requested));
  return std::bit_floor(cap);
}

// FNV-1a: cheap for short keys, and unrelated to std::hash so that keys landing in one shard
// still spread over that shard's hash buckets.
size_t shard_hash(std::string_view key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return size_t(h ^ (h >> 32));
}

}  // namespace sluice::resilience::key_table_detail
