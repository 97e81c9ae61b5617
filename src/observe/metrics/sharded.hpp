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

#include "core/worker_shard.hpp"

namespace sluice::observe {

// The worker shard functions live in core (core/worker_shard.hpp), so that resilience's
// per-worker structures use the same indices; these are their historical names here.
using detail::add_to_shard;
using detail::claim_shard_index;
using detail::shard_count;
using detail::shard_index;
using detail::sole_writer;
namespace shard_detail = detail::shard_detail;

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
