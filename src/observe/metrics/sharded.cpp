#include "observe/metrics/sharded.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <new>
#include <thread>

namespace sluice::observe {

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
