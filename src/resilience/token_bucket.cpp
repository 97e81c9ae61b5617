#include "resilience/token_bucket.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace sluice::resilience {
namespace {

// Keeps every sum of times and increments far from int64 overflow (~146 years).
constexpr double kMaxSpanNs = double(int64_t{1} << 62);

int64_t to_ns(SteadyTime t) {
  return std::chrono::duration_cast<Nanos>(t.time_since_epoch()).count();
}

}  // namespace

TokenBucket::TokenBucket(RateLimit limit, SteadyTime tat)
    : limit_(limit),
      emission_ns_(limit.rate_per_second > 0 ? 1e9 / limit.rate_per_second : 0),
      tolerance_ns_(int64_t(std::min(std::floor(limit.burst * emission_ns_), kMaxSpanNs))),
      tat_ns_(tat == SteadyTime::min() ? std::numeric_limits<int64_t>::min() : to_ns(tat)) {
  if (!(limit.rate_per_second > 0) || !(limit.burst > 0)) {
    throw std::invalid_argument("token bucket: rate_per_second and burst must be > 0");
  }
}

// GCRA: each admitted request pushes TAT forward by cost * emission; a request conforms when
// the pushed TAT is at most `tolerance` ahead of now. The increment is rounded up and the
// tolerance down, so n admissions over [t0, t1] satisfy n * inc <= (t1 - t0) + tolerance, i.e.
// n <= rate * elapsed + burst: integer rounding can only under-admit, never over-admit.
RateDecision TokenBucket::try_acquire(SteadyTime now, double cost) {
  const int64_t t = to_ns(now);
  const double inc_d = std::ceil(std::max(cost, 0.0) * emission_ns_);
  RateDecision d;
  d.limit = limit_.burst;
  if (inc_d > double(tolerance_ns_)) {
    const int64_t base = std::max(tat_ns_.load(std::memory_order_acquire), t);
    d.remaining = std::max(0.0, std::floor(double(t + tolerance_ns_ - base) / emission_ns_));
    d.reset_after = Nanos(base - t);
    d.retry_after = Nanos::max();
    return d;
  }
  const int64_t inc = int64_t(inc_d);
  int64_t tat = tat_ns_.load(std::memory_order_acquire);
  for (;;) {
    const int64_t base = std::max(tat, t);
    const int64_t new_tat = base + inc;
    const int64_t allow_at = new_tat - tolerance_ns_;
    if (allow_at > t) {
      d.remaining = std::max(0.0, std::floor(double(t + tolerance_ns_ - base) / emission_ns_));
      d.reset_after = Nanos(base - t);
      d.retry_after = Nanos(allow_at - t);
      return d;
    }
    if (tat_ns_.compare_exchange_weak(tat, new_tat, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      d.allowed = true;
      d.remaining = std::max(0.0, std::floor(double(t + tolerance_ns_ - new_tat) / emission_ns_));
      d.reset_after = Nanos(new_tat - t);
      return d;
    }
  }
}

// Rounded down, as the tolerance is: what comes back is never more than try_acquire charged
// (ceil(cost * emission)), so a give-back cannot admit beyond the limit.
void TokenBucket::give_back(SteadyTime now, double tokens) {
  const int64_t t = to_ns(now);
  const int64_t dec =
      int64_t(std::min(std::floor(std::max(tokens, 0.0) * emission_ns_), kMaxSpanNs));
  int64_t tat = tat_ns_.load(std::memory_order_acquire);
  while (tat > t) {  // at or before now the bucket is full: nothing to give back to
    if (tat_ns_.compare_exchange_weak(tat, std::max(tat - dec, t), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return;
    }
  }
}

SteadyTime TokenBucket::theoretical_arrival() const {
  const int64_t tat = tat_ns_.load(std::memory_order_acquire);
  if (tat == std::numeric_limits<int64_t>::min()) return SteadyTime::min();
  return SteadyTime(std::chrono::duration_cast<SteadyTime::duration>(Nanos(tat)));
}

}  // namespace sluice::resilience
