#include "resilience/key_table.hpp"

#include <algorithm>
#include <bit>

namespace sluice::resilience::key_table_detail {

size_t effective_shards(size_t max_keys, size_t requested) {
  // At most 65,536 shards (16 by default). Besides, the bound lets the compiler see that the
  // shard array's size cannot overflow: inlined into KeyTable's constructor by the LTO link,
  // GCC 12 otherwise warns that `new Shard[n]` may be asked for SIZE_MAX bytes.
  constexpr size_t kMaxShards = size_t{1} << 16;
  const size_t cap = std::max<size_t>(1, std::min({max_keys, requested, kMaxShards}));
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
