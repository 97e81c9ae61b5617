// SlidingWindow — request outcome counts over the last `interval`, split into `bucket_count`
// buckets that are recycled as time moves on (Sentinel's LeapArray), kept per worker: each
// thread counts in its own shard of buckets (core/worker_shard.hpp, as the metrics do), and
// stats() sums the shards. A worker that claimed its shard is its only writer and counts with
// plain loads and stores; other threads share the last shard with atomic adds.
//
//   SlidingWindow window(std::chrono::seconds(1), 10);       // ten 100 ms buckets
//   window.record(clock.now(), /*is_error=*/true, /*is_slow=*/false, rt);
//   WindowStats s = window.stats(clock.now());                // s.total, s.errors, s.slow ...
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/worker_shard.hpp"
#include "sluice/clock.hpp"

namespace sluice::resilience {

// Sums over the buckets still inside the interval.
struct WindowStats {
  uint64_t total = 0;
  uint64_t errors = 0;
  uint64_t slow = 0;
  Nanos rt_sum{0};

  double error_ratio() const { return total == 0 ? 0.0 : double(errors) / double(total); }
  double slow_ratio() const { return total == 0 ? 0.0 : double(slow) / double(total); }
  Nanos average_rt() const { return total == 0 ? Nanos{0} : rt_sum / int64_t(total); }
};

class SlidingWindow {
 public:
  // Each bucket covers interval / bucket_count (rounded down to whole nanoseconds).
  // Throws std::invalid_argument when bucket_count is 0 or a bucket would be shorter than 1 ns.
  SlidingWindow(Nanos interval, uint32_t bucket_count);
  ~SlidingWindow();
  SlidingWindow(const SlidingWindow&) = delete;
  SlidingWindow& operator=(const SlidingWindow&) = delete;

  // Counts one completed request, in the calling thread's shard, in the bucket that covers
  // `now`. A record whose time is older than its bucket's current window (a very late caller)
  // is dropped.
  void record(SteadyTime now, bool is_error, bool is_slow, Nanos rt) {
    record_in(detail::shard_index(), now, is_error, is_slow, rt);
  }
  // The same, in `shard` (a detail::shard_index() the caller has read already). Returns
  // bucket_start(now).
  int64_t record_in(std::size_t shard, SteadyTime now, bool is_error, bool is_slow, Nanos rt);

  // Sums every shard's buckets whose window lies inside (now - interval, now].
  WindowStats stats(SteadyTime now) const;

  // Forgets everything. Records racing with reset() may be lost.
  void reset();

  // The start of the bucket window that covers `now`, in ns on the clock: while it stays the
  // same, the set of buckets inside the interval does not change, and counts only grow.
  int64_t bucket_start(SteadyTime now) const;

  Nanos interval() const { return Nanos(bucket_ns_ * int64_t(bucket_count_)); }
  uint32_t bucket_count() const { return bucket_count_; }

 private:
  // Buckets of one shard are packed (only its worker writes them, and only the current one
  // at a time); each shard's row starts on a cache line of its own.
  struct Bucket {
    std::atomic<int64_t> start_ns;
    std::atomic<uint64_t> total{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> slow{0};
    std::atomic<int64_t> rt_sum_ns{0};
  };

  Bucket* row(std::size_t shard) const {
    return reinterpret_cast<Bucket*>(reinterpret_cast<char*>(buckets_) +
                                     (shard & shard_mask_) * row_bytes_);
  }
  std::size_t slot_of(int64_t t_ns, int64_t& window_start) const;

  int64_t bucket_ns_;
  uint32_t bucket_count_;
  std::size_t shard_mask_;
  std::size_t row_bytes_;  // a row's buckets, rounded up to whole cache lines
  Bucket* buckets_ = nullptr;
};

}  // namespace sluice::resilience
