// KnownWindow and may_trip() — what lets a worker skip summing the circuit breaker's window
// over every worker's shard on a success that cannot trip the breaker. A success only adds to
// the total, which can only lower a ratio, but it may be the one that brings the total up to
// min_request_amount (Sentinel and Resilience4j then trip on it), and buckets sliding out can
// raise a ratio; so a worker keeps its last exact sum and reuses it only while nothing it does
// not see can have raised the bad count: the same epoch, no bad outcome anywhere since (the
// breaker's bad-outcome sequence), the same current bucket.
//
//   KnownWindow& k = known[shard];                        // this worker's, nobody else's
//   if (k.still_holds(epoch, seq, bucket) && !may_trip(true, 0.5, 10, k.bad, ++k.total_at_least))
//     return;                                             // no sum needed
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace sluice::resilience {

// One worker's last exact sum of the window; written and read by that worker only.
struct alignas(64) KnownWindow {
  uint64_t epoch = std::numeric_limits<uint64_t>::max();  // the breaker's epoch then; max: none
  uint64_t bad_seq = 0;         // the breaker's count of bad outcomes ever recorded, then
  int64_t bucket_start = 0;     // the window's current bucket then (SlidingWindow::bucket_start)
  uint64_t bad = 0;             // bad outcomes in the window: exact while the three above hold
  uint64_t total_at_least = 0;  // outcomes in the window: the sum's, plus this worker's since

  bool still_holds(uint64_t epoch_now, uint64_t bad_seq_now, int64_t bucket_now) const {
    return epoch == epoch_now && bad_seq == bad_seq_now && bucket_start == bucket_now;
  }
};

// Whether a window with exactly `bad` bad outcomes and a total of at least `total_at_least`
// may satisfy the breaker's trip condition (total >= minimum, then bad / total > threshold for
// a ratio, bad >= threshold for a count). A ratio is highest at the smallest total the trip
// allows, so that is the one tested; false means no total can trip it.
inline bool may_trip(bool is_ratio, double threshold, uint32_t minimum, uint64_t bad,
                     uint64_t total_at_least) {
  if (bad == 0) return false;  // neither a ratio above a threshold >= 0 nor a count >= 1
  if (!is_ratio) return double(bad) >= threshold;
  const uint64_t fewest = std::max<uint64_t>({total_at_least, uint64_t{minimum}, uint64_t{1}});
  return double(bad) / double(fewest) > threshold;
}

}  // namespace sluice::resilience
