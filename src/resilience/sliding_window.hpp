// SlidingWindow — request outcome counts over the last `interval`, split into `bucket_count`
// buckets that are recycled as time moves on (Sentinel's LeapArray). Lock-free on record().
//
//   SlidingWindow window(std::chrono::seconds(1), 10);       // ten 100 ms buckets
//   window.record(clock.now(), /*is_error=*/true, /*is_slow=*/false, rt);
//   WindowStats s = window.stats(clock.now());                // s.total, s.errors, s.slow ...
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

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

  // Counts one completed request in the bucket that covers `now`. A record whose time is
  // older than its bucket's current window (a very late caller) is dropped.
  void record(SteadyTime now, bool is_error, bool is_slow, Nanos rt);

  // Sums the buckets whose window lies inside (now - interval, now].
  WindowStats stats(SteadyTime now) const;

  // Forgets everything. Records racing with reset() may be lost.
  void reset();

  Nanos interval() const { return Nanos(bucket_ns_ * int64_t(bucket_count_)); }
  uint32_t bucket_count() const { return bucket_count_; }

 private:
  // One cache line per bucket so that neighbours do not false-share.
  struct alignas(64) Bucket {
    std::atomic<int64_t> start_ns;
    std::atomic<uint64_t> total{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> slow{0};
    std::atomic<int64_t> rt_sum_ns{0};
  };

  Bucket& bucket_for(int64_t t_ns, int64_t& window_start) const;

  int64_t bucket_ns_;
  uint32_t bucket_count_;
  std::unique_ptr<Bucket[]> buckets_;
};

}  // namespace sluice::resilience
