#include "core/worker_shard.hpp"

#include <algorithm>
#include <bit>
#include <thread>

namespace sluice::detail {

namespace {
// Which shards have a sole writer now: one bit per shard (shard_count() <= 16).
std::atomic<uint32_t> claimed{0};

// Gives a thread's claim back when the thread ends.
struct Claim {
  uint32_t bit = 0;
  ~Claim() {
    if (bit != 0) claimed.fetch_and(~bit, std::memory_order_acq_rel);
  }
};
thread_local Claim held;

std::size_t shared_shard() {
  return shard_count() - 1;
}
}  // namespace

std::size_t shard_detail::assign_shard_index() {
  shard_detail::thread_shard = shared_shard();
  return shard_detail::thread_shard;
}

void claim_shard_index(std::size_t index) {
  if (held.bit != 0) {  // a thread claiming again gives up its earlier shard first
    claimed.fetch_and(~held.bit, std::memory_order_acq_rel);
    held.bit = 0;
  }
  if (index < shared_shard()) {
    const uint32_t bit = uint32_t{1} << index;
    if ((claimed.fetch_or(bit, std::memory_order_acq_rel) & bit) == 0) {
      held.bit = bit;
      shard_detail::thread_shard = index | shard_detail::kSoleWriter;
      return;
    }
  }
  shard_detail::thread_shard = shared_shard();
}

std::size_t shard_count() {
  static const std::size_t n =
      std::bit_ceil(std::clamp<std::size_t>(std::thread::hardware_concurrency() + 1, 2, 16));
  return n;
}

}  // namespace sluice::detail
