#include "resilience/sliding_window.hpp"

#include <limits>
#include <new>
#include <stdexcept>
#include <thread>

namespace sluice::resilience {
namespace {

// Marks a bucket whose counters are being zeroed by the thread that won the CAS.
constexpr int64_t kResetting = std::numeric_limits<int64_t>::min();
// Marks a bucket that holds no window yet (or was reset); always stale.
constexpr int64_t kEmpty = std::numeric_limits<int64_t>::min() + 1;

int64_t to_ns(SteadyTime t) {
  return std::chrono::duration_cast<Nanos>(t.time_since_epoch()).count();
}

// Floor division, so that times before the clock's epoch still map to a proper bucket.
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

SlidingWindow::SlidingWindow(Nanos interval, uint32_t bucket_count)
    : bucket_ns_(bucket_count == 0 ? 0 : interval.count() / int64_t(bucket_count)),
      bucket_count_(bucket_count),
      shard_mask_(detail::shard_count() - 1),
      row_bytes_((std::size_t(bucket_count) * sizeof(Bucket) + 63) / 64 * 64) {
  if (bucket_count == 0) throw std::invalid_argument("sliding window: bucket_count must be > 0");
  if (bucket_ns_ <= 0) {
    throw std::invalid_argument("sliding window: interval / bucket_count must be >= 1ns");
  }
  const std::size_t bytes = row_bytes_ * (shard_mask_ + 1);
  buckets_ = static_cast<Bucket*>(::operator new[](bytes, std::align_val_t{64}));
  for (std::size_t shard = 0; shard <= shard_mask_; ++shard) {
    for (uint32_t i = 0; i < bucket_count; ++i)
      new (row(shard) + i) Bucket{kEmpty};
  }
}

SlidingWindow::~SlidingWindow() {
  ::operator delete[](buckets_, std::align_val_t{64});  // Bucket is trivially destructible
}

std::size_t SlidingWindow::slot_of(int64_t t_ns, int64_t& window_start) const {
  const int64_t index = floor_div(t_ns, bucket_ns_);
  window_start = index * bucket_ns_;
  const int64_t n = int64_t(bucket_count_);
  return std::size_t(((index % n) + n) % n);
}

int64_t SlidingWindow::bucket_start(SteadyTime now) const {
  int64_t start = 0;
  slot_of(to_ns(now), start);
  return start;
}

// A stale bucket is recycled by whichever recorder wins the CAS from the old start time to
// kResetting; it zeroes the counters and then publishes the new start. Others that see
// kResetting spin for those few stores. In a worker's own shard the worker is the only
// recorder; the CAS is still needed against reset(), which marks buckets empty from any thread.
// The remaining race is tiny and accepted: a recorder that checked the start time and was then
// descheduled for a whole interval adds its counts to the recycled bucket (a sample lands one
// interval late), and records racing with reset() may be lost. Both only shift statistics by a
// sample or two.
int64_t SlidingWindow::record_in(std::size_t shard, SteadyTime now, bool is_error, bool is_slow,
                                 Nanos rt) {
  int64_t window_start = 0;
  Bucket& b = row(shard)[slot_of(to_ns(now), window_start)];
  int64_t seen = b.start_ns.load(std::memory_order_acquire);
  while (seen != window_start) {
    if (seen == kResetting) {
      std::this_thread::yield();
      seen = b.start_ns.load(std::memory_order_acquire);
      continue;
    }
    if (seen > window_start) return window_start;  // the bucket already serves a newer window
    if (b.start_ns.compare_exchange_weak(seen, kResetting, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
      b.total.store(0, std::memory_order_relaxed);
      b.errors.store(0, std::memory_order_relaxed);
      b.slow.store(0, std::memory_order_relaxed);
      b.rt_sum_ns.store(0, std::memory_order_relaxed);
      b.start_ns.store(window_start, std::memory_order_release);
      break;
    }
  }
  detail::add_to_shard(b.total, uint64_t{1}, shard);
  if (is_error) detail::add_to_shard(b.errors, uint64_t{1}, shard);
  if (is_slow) detail::add_to_shard(b.slow, uint64_t{1}, shard);
  detail::add_to_shard(b.rt_sum_ns, int64_t(rt.count()), shard);
  return window_start;
}

WindowStats SlidingWindow::stats(SteadyTime now) const {
  int64_t current_start = 0;
  slot_of(to_ns(now), current_start);
  const int64_t oldest_valid = current_start - interval().count();
  WindowStats s;
  for (std::size_t shard = 0; shard <= shard_mask_; ++shard) {
    const Bucket* buckets = row(shard);
    for (uint32_t i = 0; i < bucket_count_; ++i) {
      const Bucket& b = buckets[i];
      const int64_t start = b.start_ns.load(std::memory_order_acquire);
      if (start <= oldest_valid || start > current_start) continue;  // also skips the markers
      const uint64_t total = b.total.load(std::memory_order_acquire);
      const uint64_t errors = b.errors.load(std::memory_order_acquire);
      const uint64_t slow = b.slow.load(std::memory_order_acquire);
      const int64_t rt_sum = b.rt_sum_ns.load(std::memory_order_acquire);
      // Seqlock-style re-check (the acquire loads above keep it after them): if the bucket was
      // recycled while we read it, its figures belong to another window.
      if (b.start_ns.load(std::memory_order_relaxed) != start) continue;
      s.total += total;
      s.errors += errors;
      s.slow += slow;
      s.rt_sum += Nanos(rt_sum);
    }
  }
  return s;
}

void SlidingWindow::reset() {
  for (std::size_t shard = 0; shard <= shard_mask_; ++shard) {
    Bucket* buckets = row(shard);
    for (uint32_t i = 0; i < bucket_count_; ++i) {
      Bucket& b = buckets[i];
      int64_t seen = b.start_ns.load(std::memory_order_acquire);
      // A bucket being recycled right now is about to hold a fresh window anyway.
      while (seen != kResetting && seen != kEmpty &&
             !b.start_ns.compare_exchange_weak(seen, kEmpty)) {
      }
    }
  }
}

}  // namespace sluice::resilience
