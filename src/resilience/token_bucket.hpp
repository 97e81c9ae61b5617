// TokenBucket — a lock-free token bucket as GCRA: one atomic "theoretical arrival time" (TAT)
// moved forward by a CAS loop. Never admits more than burst + rate * elapsed, even under races.
//
//   TokenBucket bucket({.rate_per_second = 100, .burst = 20});
//   RateDecision d = bucket.try_acquire(clock.now());
//   if (!d.allowed) reply_429(d.retry_after, d.limit, d.remaining, d.reset_after);
#pragma once

#include <atomic>
#include <cstdint>

#include "resilience/rate_limiter_backend.hpp"
#include "sluice/clock.hpp"

namespace sluice::resilience {

class TokenBucket {
 public:
  // Starts full, or with the debt of a previous bucket when `tat` is given (see
  // theoretical_arrival()). Throws std::invalid_argument unless rate and burst are > 0.
  explicit TokenBucket(RateLimit limit, SteadyTime tat = SteadyTime::min());

  // Takes `cost` tokens when they are there. A cost above the burst never passes; its
  // retry_after is Nanos::max(). Thread-safe, lock-free.
  RateDecision try_acquire(SteadyTime now, double cost = 1);

  // Returns `tokens` taken earlier and not spent (a worker's lease that ended): at most the time
  // they cost, and never more than makes the bucket full. Lock-free.
  void give_back(SteadyTime now, double tokens);

  const RateLimit& limit() const { return limit_; }
  // The time at which the bucket is full again; in the past when it already is.
  SteadyTime theoretical_arrival() const;

 private:
  RateLimit limit_;
  double emission_ns_;    // time one token takes to come back
  int64_t tolerance_ns_;  // how far TAT may run ahead of now: burst * emission, rounded down
  std::atomic<int64_t> tat_ns_;
};

}  // namespace sluice::resilience
