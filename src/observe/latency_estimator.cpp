#include "observe/latency_estimator.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <thread>

#include "observe/metrics/sharded.hpp"

namespace sluice::observe {
namespace {

using Estimator = LatencyEstimator;

uint64_t midpoint(std::size_t index) {
  return Estimator::bucket_lower(index) + Estimator::bucket_width(index) / 2;
}

// The index of the bucket holding the sample of rank ceil(q * total) (1-based).
std::size_t quantile_index(const std::array<uint32_t, Estimator::kBuckets>& counts, uint64_t total,
                           double q) {
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * double(total))));
  uint64_t seen = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank) return i;
  }
  return counts.size() - 1;
}

}  // namespace

std::string_view to_string(LatencyBucket b) {
  switch (b) {
    case LatencyBucket::kP50:
      return "p50";
    case LatencyBucket::kP95:
      return "p95";
    case LatencyBucket::kP99:
      return "p99";
    case LatencyBucket::kSlow:
      break;
  }
  return "slow";
}

LatencyEstimator::LatencyEstimator(Nanos window, Nanos refresh)
    : window_ns_(std::max<int64_t>(1, window.count())),
      refresh_ns_(refresh.count()),
      shard_mask_(shard_count() - 1),
      shards_(std::make_unique<std::atomic<Shard*>[]>(shard_count())) {}

LatencyEstimator::~LatencyEstimator() {
  for (std::size_t i = 0; i <= shard_mask_; ++i)
    delete shards_[i].load(std::memory_order_relaxed);
}

LatencyEstimator::Shard& LatencyEstimator::own_shard() {
  std::atomic<Shard*>& slot = shards_[shard_index() & shard_mask_];
  Shard* s = slot.load(std::memory_order_acquire);
  return s != nullptr ? *s : *make_shard(slot);
}

std::size_t LatencyEstimator::shards_in_use() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i <= shard_mask_; ++i)
    n += shards_[i].load(std::memory_order_acquire) != nullptr ? 1 : 0;
  return n;
}

// Two threads of one shard (more threads than shards) may race here: one allocation wins.
LatencyEstimator::Shard* LatencyEstimator::make_shard(std::atomic<Shard*>& slot) {
  auto fresh = std::make_unique<Shard>();
  Shard* expected = nullptr;
  if (slot.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel))
    return fresh.release();
  return expected;
}

uint64_t LatencyEstimator::bucket_lower(std::size_t index) {
  if (index < kSubBuckets) return index;
  const auto e = static_cast<int>(index / kSubBuckets) + kSubBucketBits - 1;
  const auto sub = index % kSubBuckets;
  return (kSubBuckets + sub) << (e - kSubBucketBits);
}

uint64_t LatencyEstimator::bucket_width(std::size_t index) {
  if (index < kSubBuckets) return 1;
  const auto e = static_cast<int>(index / kSubBuckets) + kSubBucketBits - 1;
  return uint64_t{1} << (e - kSubBucketBits);
}

// record()'s first sample on this shard, or the first in a new window (or a late one).
void LatencyEstimator::record_slow(int64_t epoch, Nanos latency) {
  Window& w = own_shard().windows[static_cast<std::size_t>(epoch) & 1];
  int64_t seen = w.epoch.load(std::memory_order_acquire);
  while (seen != epoch) {
    if (seen > epoch) return;  // a late sample from two windows ago: not recent any more
    if (seen == kResetting) {
      // Another thread is clearing this window for the new epoch (a few thousand stores, once
      // per window): wait for it rather than add to counts it is about to zero.
      std::this_thread::yield();
      seen = w.epoch.load(std::memory_order_acquire);
      continue;
    }
    // Claim the window, clear it, then publish the new epoch: a sample added meanwhile by a
    // thread that already saw the new epoch would otherwise be zeroed and lost.
    if (w.epoch.compare_exchange_weak(seen, kResetting, std::memory_order_acq_rel)) {
      for (auto& c : w.counts)
        c.store(0, std::memory_order_relaxed);
      w.epoch.store(epoch, std::memory_order_release);
      break;
    }
  }
  const auto nanos = static_cast<uint64_t>(std::max<int64_t>(0, latency.count()));
  w.counts[bucket_index(nanos)].fetch_add(1, std::memory_order_relaxed);
}

uint64_t LatencyEstimator::collect(TimePoint now, std::array<uint32_t, kBuckets>& out) const {
  const int64_t epoch = epoch_of(now);
  out.fill(0);
  uint64_t total = 0;
  for (std::size_t s = 0; s <= shard_mask_; ++s) {
    const Shard* shard = shards_[s].load(std::memory_order_acquire);
    if (shard == nullptr) continue;
    for (const Window& w : shard->windows) {
      const int64_t e = w.epoch.load(std::memory_order_acquire);
      if (e != epoch && e != epoch - 1) continue;
      for (std::size_t i = 0; i < kBuckets; ++i) {
        const uint32_t c = w.counts[i].load(std::memory_order_relaxed);
        out[i] += c;
        total += c;
      }
    }
  }
  return total;
}

LatencyEstimator::Nanos LatencyEstimator::quantile(TimePoint now, double q) const {
  std::array<uint32_t, kBuckets> counts;
  const uint64_t total = collect(now, counts);
  if (total == 0) return Nanos(0);
  return Nanos(static_cast<int64_t>(midpoint(quantile_index(counts, total, q))));
}

LatencyEstimator::Snapshot LatencyEstimator::snapshot(TimePoint now) const {
  std::array<uint32_t, kBuckets> counts;
  Snapshot s;
  s.count = collect(now, counts);
  if (s.count == 0) return s;
  s.p50 = Nanos(static_cast<int64_t>(midpoint(quantile_index(counts, s.count, 0.50))));
  s.p95 = Nanos(static_cast<int64_t>(midpoint(quantile_index(counts, s.count, 0.95))));
  s.p99 = Nanos(static_cast<int64_t>(midpoint(quantile_index(counts, s.count, 0.99))));
  return s;
}

void LatencyEstimator::refresh_cache(TimePoint now) {
  const int64_t now_ns = std::chrono::duration_cast<Nanos>(now.time_since_epoch()).count();
  int64_t next = next_refresh_ns_.load(std::memory_order_relaxed);
  if (now_ns < next) return;
  // One thread recomputes; the others keep using the previous values meanwhile.
  if (!next_refresh_ns_.compare_exchange_strong(next, now_ns + refresh_ns_,
                                                std::memory_order_relaxed)) {
    return;
  }
  std::array<uint32_t, kBuckets> counts;
  const uint64_t total = collect(now, counts);
  if (total == 0) {
    cache_valid_.store(false, std::memory_order_relaxed);
    return;
  }
  p50_index_.store(static_cast<uint32_t>(quantile_index(counts, total, 0.50)),
                   std::memory_order_relaxed);
  p95_index_.store(static_cast<uint32_t>(quantile_index(counts, total, 0.95)),
                   std::memory_order_relaxed);
  p99_index_.store(static_cast<uint32_t>(quantile_index(counts, total, 0.99)),
                   std::memory_order_relaxed);
  cache_valid_.store(true, std::memory_order_release);
}

LatencyEstimator::Nanos LatencyEstimator::recent_p99(TimePoint now) {
  refresh_cache(now);
  if (!cache_valid_.load(std::memory_order_acquire)) return Nanos(0);
  return Nanos(static_cast<int64_t>(midpoint(p99_index_.load(std::memory_order_relaxed))));
}

LatencyBucket LatencyEstimator::classify(TimePoint now, Nanos latency) {
  refresh_cache(now);
  if (!cache_valid_.load(std::memory_order_acquire)) return LatencyBucket::kP50;
  const auto i = bucket_index(static_cast<uint64_t>(std::max<int64_t>(0, latency.count())));
  if (i <= p50_index_.load(std::memory_order_relaxed)) return LatencyBucket::kP50;
  if (i <= p95_index_.load(std::memory_order_relaxed)) return LatencyBucket::kP95;
  if (i <= p99_index_.load(std::memory_order_relaxed)) return LatencyBucket::kP99;
  return LatencyBucket::kSlow;
}

}  // namespace sluice::observe
