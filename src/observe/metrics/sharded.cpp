#include "observe/metrics/sharded.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <new>
#include <thread>

namespace sluice::observe {

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

ShardedCounter::ShardedCounter()
    : mask_(shard_count() - 1), shards_(std::make_unique<Shard[]>(shard_count())) {}

uint64_t ShardedCounter::value() const {
  uint64_t total = 0;
  for (std::size_t i = 0; i <= mask_; ++i)
    total += shards_[i].value.load(std::memory_order_relaxed);
  return total;
}

ShardedGauge::ShardedGauge()
    : mask_(shard_count() - 1), shards_(std::make_unique<Shard[]>(shard_count())) {}

int64_t ShardedGauge::value() const {
  int64_t total = 0;
  for (std::size_t i = 0; i <= mask_; ++i)
    total += shards_[i].value.load(std::memory_order_relaxed);
  return total;
}

ShardedHistogram::ShardedHistogram(std::vector<uint64_t> bounds)
    : bounds_(std::move(bounds)), mask_(shard_count() - 1) {
  constexpr std::size_t per_line = 64 / sizeof(std::atomic<uint64_t>);
  stride_ = (bounds_.size() + 2 + per_line - 1) / per_line * per_line;  // buckets, +Inf, sum
  const std::size_t n = stride_ * shard_count();
  slots_ = static_cast<std::atomic<uint64_t>*>(
      ::operator new[](n * sizeof(std::atomic<uint64_t>), std::align_val_t{64}));
  for (std::size_t i = 0; i < n; ++i)
    new (slots_ + i) std::atomic<uint64_t>(0);
}

ShardedHistogram::~ShardedHistogram() {
  ::operator delete[](slots_, std::align_val_t{64});
}

ShardedHistogram::Totals ShardedHistogram::totals() const {
  Totals t;
  const std::size_t n = bounds_.size();
  t.counts.assign(n + 1, 0);
  for (std::size_t s = 0; s <= mask_; ++s) {
    const std::atomic<uint64_t>* row = slots_ + s * stride_;
    for (std::size_t i = 0; i <= n; ++i)
      t.counts[i] += row[i].load(std::memory_order_relaxed);
    t.sum += row[n + 1].load(std::memory_order_relaxed);
  }
  return t;
}

}  // namespace sluice::observe
