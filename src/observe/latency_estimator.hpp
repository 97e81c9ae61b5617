// LatencyEstimator: a running estimate of recent latency quantiles (p50, p95, p99) of one route
// or one middleware, cheap to record from any number of threads (one relaxed atomic increment,
// on the calling thread's own shard: workers never write the same cache line).
//
//   LatencyEstimator est;                               // 10 s windows
//   est.record(clock.now(), elapsed);                   // per request
//   log.latency_bucket = to_string(est.classify(clock.now(), elapsed));   // "p95"
//
// How it works: a log-linear histogram (HdrHistogram-style) of atomic counters. Values below
// 16 ns have their own bucket; above, every power of two is split into 16 equal buckets, so a
// bucket spans at most 1/16 of its lower bound. A quantile is reported as the midpoint of the
// bucket holding it: relative error at most 1/32 (3.1 %) of the true sample value, for values
// up to 2^40 ns (about 18 minutes; larger values count in the last bucket).
//
// "Recent" means two alternating windows: the current one and the one before, so a quantile
// covers between one and two window lengths of history. A window's counters are cleared by the
// first record() that enters it; a sample racing with that clear may be lost (once per window).
//
// Per worker: the counters are kept per shard (observe/metrics/sharded.hpp: each worker thread
// has its own shard index), allocated when a thread of that shard first records, and summed
// when read. One worker costs the one set of counters it always did (4.7 KB); N workers serving
// a route cost N sets for it, instead of N workers incrementing, and clearing, shared lines.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "observe/metrics/sharded.hpp"

namespace sluice::observe {

// Where a latency falls against the recent distribution: at or below p50, at or below p95,
// at or below p99, or above p99 ("slow"). Compared at bucket resolution.
enum class LatencyBucket : uint8_t { kP50, kP95, kP99, kSlow };

std::string_view to_string(LatencyBucket b);

class LatencyEstimator {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Nanos = std::chrono::nanoseconds;

  static constexpr int kSubBucketBits = 4;
  static constexpr std::size_t kSubBuckets = std::size_t{1} << kSubBucketBits;
  static constexpr int kMaxExponent = 40;  // values >= 2^40 ns share the last bucket
  static constexpr std::size_t kBuckets = (kMaxExponent - kSubBucketBits + 1) * kSubBuckets;

  struct Snapshot {
    uint64_t count = 0;  // samples in the recent windows
    Nanos p50{0};
    Nanos p95{0};
    Nanos p99{0};
  };

  // `window`: the length of one window. `refresh`: how stale classify()'s cached quantiles may
  // get (recomputing them reads every bucket, so it is not done per request).
  explicit LatencyEstimator(Nanos window = std::chrono::seconds(10),
                            Nanos refresh = std::chrono::milliseconds(500));
  ~LatencyEstimator();
  LatencyEstimator(const LatencyEstimator&) = delete;
  LatencyEstimator& operator=(const LatencyEstimator&) = delete;

  // Inline for the common case (the thread's shard exists, its window is current: a division,
  // a few loads and one relaxed increment); the rest — a first record, a new window — out of line.
  void record(TimePoint now, Nanos latency) {
    with_shard_writer([&](auto w) { record_at(w, now, latency); });
  }
  // With the calling thread's shard resolved once for several samples.
  template <bool Sole>
  void record_at(ShardWriter<Sole> shard, TimePoint now, Nanos latency) {
    record_in_window(shard, window_of(now, Nanos(window_ns_)), latency);
  }

  // The number of the window `now` falls in, for estimators of length `window`: a 64-bit
  // division (tens of cycles), which a caller recording one time into several estimators of one
  // length (the metrics observer: one per middleware) does once, with a constant `window`.
  static int64_t window_of(TimePoint now, Nanos window) {
    return std::chrono::duration_cast<Nanos>(now.time_since_epoch()).count() / window.count();
  }
  Nanos window() const { return Nanos(window_ns_); }
  // `epoch`: window_of(now, window()).
  template <bool Sole>
  void record_in_window(ShardWriter<Sole> shard, int64_t epoch, Nanos latency) {
    Shard* s = shards_[shard.index].load(std::memory_order_acquire);
    if (s != nullptr) {
      Window& w = s->windows[static_cast<std::size_t>(epoch) & 1];
      if (w.epoch.load(std::memory_order_acquire) == epoch) {
        shard.add(
            w.counts[bucket_index(static_cast<uint64_t>(std::max<int64_t>(0, latency.count())))],
            uint32_t{1});
        return;
      }
    }
    record_slow(epoch, latency);
  }

  // q in [0, 1]; 0 ns when there is no sample in the recent windows.
  Nanos quantile(TimePoint now, double q) const;
  Snapshot snapshot(TimePoint now) const;

  // Against quantiles at most `refresh` old. With no sample yet, everything is kP50.
  LatencyBucket classify(TimePoint now, Nanos latency);

  // The p99 at most `refresh` old, from the same cache as classify(): cheap enough per request.
  // 0 ns when there is no sample in the recent windows.
  Nanos recent_p99(TimePoint now);

  // How many shards hold counters (a thread of that shard recorded), for tests.
  std::size_t shards_in_use() const;

  // Bucket arithmetic, public for tests.
  static std::size_t bucket_index(uint64_t nanos) {
    if (nanos < kSubBuckets) return static_cast<std::size_t>(nanos);
    const int e = std::bit_width(nanos) - 1;  // nanos in [2^e, 2^(e+1))
    if (e >= kMaxExponent) return kBuckets - 1;
    const auto sub = static_cast<std::size_t>((nanos >> (e - kSubBucketBits)) & (kSubBuckets - 1));
    return static_cast<std::size_t>(e - kSubBucketBits + 1) * kSubBuckets + sub;
  }
  static uint64_t bucket_lower(std::size_t index);
  static uint64_t bucket_width(std::size_t index);

 private:
  static constexpr int64_t kResetting = INT64_MIN;  // a window's epoch while it is cleared
  struct Window {
    std::atomic<int64_t> epoch{-1};  // kResetting while a thread clears it for a new epoch
    std::array<std::atomic<uint32_t>, kBuckets> counts{};
  };

  struct alignas(64) Shard {
    std::array<Window, 2> windows;
  };
  Shard& own_shard();
  Shard* make_shard(std::atomic<Shard*>& slot);

  int64_t epoch_of(TimePoint now) const { return window_of(now, Nanos(window_ns_)); }
  void record_slow(int64_t epoch, Nanos latency);
  // Sums the recent windows into `out`; returns the total.
  uint64_t collect(TimePoint now, std::array<uint32_t, kBuckets>& out) const;
  void refresh_cache(TimePoint now);

  const int64_t window_ns_;
  const int64_t refresh_ns_;
  const std::size_t shard_mask_;
  const std::unique_ptr<std::atomic<Shard*>[]> shards_;  // nullptr until that shard records

  std::atomic<int64_t> next_refresh_ns_{INT64_MIN};
  std::atomic<bool> cache_valid_{false};
  std::atomic<uint32_t> p50_index_{0};
  std::atomic<uint32_t> p95_index_{0};
  std::atomic<uint32_t> p99_index_{0};
};

}  // namespace sluice::observe
