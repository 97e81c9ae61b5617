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

// The calling thread's shard resolved once for a run of adds (the metrics observer's ~22 per
// request): `index` is already below shard_count(), and whether its adds are plain is part of
// the type, so no add tests the sole-writer bit again. Made by with_shard_writer.
template <bool Sole>
struct ShardWriter {
  static constexpr bool kSole = Sole;
  std::size_t index;
  template <class T>
  void add(std::atomic<T>& slot, T n) const {
    if constexpr (Sole)
      slot.store(static_cast<T>(slot.load(std::memory_order_relaxed) + n),
                 std::memory_order_relaxed);
    else
      slot.fetch_add(n, std::memory_order_relaxed);
  }
};

// Calls fn(ShardWriter<true>) when the calling thread is its shard's sole writer, else
// fn(ShardWriter<false>) on the shared shard: one test, and fn compiled once for each kind.
template <class Fn>
inline decltype(auto) with_shard_writer(Fn&& fn) {
  const std::size_t shard = shard_index();
  // Without the sole-writer bit a thread's shard is already below shard_count() (a claimed
  // index, or the shared last one): no modulo needed.
  if (sole_writer(shard)) return fn(ShardWriter<true>{shard & ~shard_detail::kSoleWriter});
  return fn(ShardWriter<false>{shard});
}

class ShardedCounter {
 public:
  ShardedCounter();
  void add(uint64_t n = 1) {
    const std::size_t shard = shard_index();
    add_to_shard(shards_[shard & mask_].value, n, shard);
  }
  // With the calling thread's shard resolved once for several metrics.
  template <bool Sole>
  void add_at(ShardWriter<Sole> w, uint64_t n = 1) {
    w.add(shards_[w.index].value, n);
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
  void add(int64_t n) {
    const std::size_t shard = shard_index();
    add_to_shard(shards_[shard & mask_].value, n, shard);
  }
  template <bool Sole>
  void add_at(ShardWriter<Sole> w, int64_t n) {
    w.add(shards_[w.index].value, n);
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

  void observe(uint64_t value) {
    const std::size_t shard = shard_index();
    const std::size_t i = bucket_of(value);
    std::atomic<uint64_t>* s = slots_ + (shard & mask_) * stride_;
    add_to_shard(s[i], uint64_t{1}, shard);
    add_to_shard(s[bounds_.size() + 1], value, shard);
  }
  // With the calling thread's shard resolved once for several samples.
  template <bool Sole>
  void observe_at(ShardWriter<Sole> w, uint64_t value) {
    const std::size_t i = bucket_of(value);
    std::atomic<uint64_t>* s = slots_ + w.index * stride_;
    w.add(s[i], uint64_t{1});
    w.add(s[bounds_.size() + 1], value);
  }

  struct Totals {
    std::vector<uint64_t> counts;  // per bucket (not cumulative); the last one is +Inf
    uint64_t sum = 0;
  };
  Totals totals() const;
  const std::vector<uint64_t>& bounds() const { return bounds_; }

 private:
  // Linear from the smallest bound: most samples (a middleware's self time) land in the first
  // few buckets, where this beats a binary search.
  std::size_t bucket_of(uint64_t value) const {
    std::size_t i = 0;
    const std::size_t n = bounds_.size();
    while (i < n && value > bounds_[i])
      ++i;
    return i;
  }

  const std::vector<uint64_t> bounds_;
  std::size_t mask_;
  std::size_t stride_;  // atomics per shard, rounded up to whole cache lines
  std::atomic<uint64_t>* slots_;
};

}  // namespace sluice::observe
