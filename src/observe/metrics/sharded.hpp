// Per-worker sharded counters, gauges and histograms: a request thread adds to its own
// cache-line-aligned shard, a worker that is its shard's only writer with a plain load and
// store, any other thread with one relaxed atomic add; a scrape sums the shards. This is the
// hot-path half of sluice's metrics; prometheus-cpp's registry and text serializer remain the
// scrape half (see HttpMetrics::collect and docs/OBSERVABILITY.md for the measurement that
// chose this over prometheus::Histogram, whose Observe takes a mutex).
//
//   ShardedHistogram h({100'000, 1'000'000});   // bounds in integer units (here ns)
//   h.observe(250'000);                          // any thread, never blocks
//   auto t = h.totals();                         // at scrape: per-bucket counts + sum
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::observe {

// The calling thread's shard, modulo the shard count. The gateway's worker threads claim
// 0, 1, 2, ... (claim_shard_index, as they start) and are each the only writer of their shard;
// every other thread (admin, log writer, exporter, a library user's own), a worker claiming an
// index another live thread holds, and workers past the last-but-one shard, all write the last
// shard, with atomic adds.
//
// Why sole writers: a lock-prefixed add costs ~20 cycles even on a line no other core touches,
// and a proxied request makes ~20 of them here (docs/PERFORMANCE.md, "single-writer shards").
// With one writer, load + store is exact: no other thread adds to that slot, and a scrape's
// relaxed load of an aligned 64-bit atomic never sees a torn value.
namespace shard_detail {
// The high bit of a shard index: the calling thread is the shard's only writer.
inline constexpr std::size_t kSoleWriter = std::size_t{1} << (sizeof(std::size_t) * 8 - 1);
// Constant-initialised and trivially destructible: read without a TLS wrapper call.
inline constinit thread_local std::size_t thread_shard = SIZE_MAX;
std::size_t assign_shard_index();  // a thread that claimed none: the shared last shard
}  // namespace shard_detail
// The calling thread's shard, maybe with kSoleWriter set: index arrays with `& (count - 1)`.
inline std::size_t shard_index() {
  const std::size_t s = shard_detail::thread_shard;
  return s != SIZE_MAX ? s : shard_detail::assign_shard_index();
}
// Makes the calling thread the only writer of shard `index` when that is free and not the
// last; otherwise it writes the shared last shard. Released when the thread ends.
void claim_shard_index(std::size_t index);
// How many shards every sharded metric has: a power of two, more than the CPU count (every
// worker up to one per CPU gets a shard of its own beside the shared one), at most 16.
std::size_t shard_count();
// True when `shard` (a shard_index()) may be written with plain loads and stores.
inline bool sole_writer(std::size_t shard) {
  return (shard & shard_detail::kSoleWriter) != 0;
}

// Adds n to one shard's slot: see "Why sole writers" above.
template <class T>
inline void add_to_shard(std::atomic<T>& slot, T n, std::size_t shard) {
  if (sole_writer(shard))
    slot.store(static_cast<T>(slot.load(std::memory_order_relaxed) + n), std::memory_order_relaxed);
  else
    slot.fetch_add(n, std::memory_order_relaxed);
}

class ShardedCounter {
 public:
  ShardedCounter();
  void add(uint64_t n = 1) { add_in(shard_index(), n); }
  // With the calling thread's shard_index() read once for several metrics.
  void add_in(std::size_t shard, uint64_t n = 1) {
    add_to_shard(shards_[shard & mask_].value, n, shard);
  }
  uint64_t value() const;

 private:
  struct alignas(64) Shard {
    std::atomic<uint64_t> value{0};
  };
  std::size_t mask_;
  std::unique_ptr<Shard[]> shards_;
};

class ShardedGauge {
 public:
  ShardedGauge();
  void add(int64_t n) { add_in(shard_index(), n); }
  void add_in(std::size_t shard, int64_t n) {
    add_to_shard(shards_[shard & mask_].value, n, shard);
  }
  int64_t value() const;

 private:
  struct alignas(64) Shard {
    std::atomic<int64_t> value{0};
  };
  std::size_t mask_;
  std::unique_ptr<Shard[]> shards_;
};

// Bucket bounds are inclusive upper bounds (Prometheus `le`), ascending, in integer units;
// one more bucket (+Inf) catches the rest.
class ShardedHistogram {
 public:
  explicit ShardedHistogram(std::vector<uint64_t> bounds);
  ~ShardedHistogram();
  ShardedHistogram(const ShardedHistogram&) = delete;
  ShardedHistogram& operator=(const ShardedHistogram&) = delete;

  void observe(uint64_t value) { observe_in(shard_index(), value); }
  // With the calling thread's shard_index() read once for several samples.
  void observe_in(std::size_t shard, uint64_t value) {
    // Linear from the smallest bound: most samples (a middleware's self time) land in the first
    // few buckets, where this beats a binary search.
    std::size_t i = 0;
    const std::size_t n = bounds_.size();
    while (i < n && value > bounds_[i])
      ++i;
    std::atomic<uint64_t>* s = slots_ + (shard & mask_) * stride_;
    add_to_shard(s[i], uint64_t{1}, shard);
    add_to_shard(s[n + 1], value, shard);
  }

  struct Totals {
    std::vector<uint64_t> counts;  // per bucket (not cumulative); the last one is +Inf
    uint64_t sum = 0;
  };
  Totals totals() const;
  const std::vector<uint64_t>& bounds() const { return bounds_; }

 private:
  const std::vector<uint64_t> bounds_;
  std::size_t mask_;
  std::size_t stride_;  // atomics per shard, rounded up to whole cache lines
  std::atomic<uint64_t>* slots_;
};

}  // namespace sluice::observe
