// RateLimiterBackend — where a rate-limit decision is made: a local token bucket in this
// process, or a quota shared through Redis. Knows nothing of HTTP.
//
//   RateLimit limit{.rate_per_second = 100, .burst = 20};
//   if (auto d = backend.try_decide("ip:10.0.0.1", limit)) use(*d);       // answered at once
//   else backend.decide_async("ip:10.0.0.1", limit, [](RateDecision d) { use(d); });
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/clock.hpp"

namespace sluice::resilience {

// A token-bucket limit: `rate_per_second` tokens are added per second up to `burst`.
struct RateLimit {
  double rate_per_second = 0;
  double burst = 0;
};

// The outcome of one decision; also what the 429 and RateLimit-* headers are built from.
struct RateDecision {
  bool allowed = false;
  double limit = 0;                        // the burst (RateLimit-Limit)
  double remaining = 0;                    // whole tokens left after this decision
  std::chrono::nanoseconds reset_after{};  // until the bucket is full again (RateLimit-Reset)
  std::chrono::nanoseconds retry_after{};  // until one token is available (0 when allowed)
  bool degraded = false;                   // decided by a degraded-mode policy, not the backend
};

class RateLimiterBackend {
 public:
  virtual ~RateLimiterBackend() = default;

  // Decides at once when the backend can (a local bucket always can; a leased Redis quota can
  // while it holds tokens). nullopt means "ask decide_async".
  virtual std::optional<RateDecision> try_decide(std::string_view key, const RateLimit& limit) = 0;

  // The clock a backend that decides in this process keeps its buckets on, or nullptr (a remote
  // backend's time is its own). A caller that already holds a reading of it (the chain's, see
  // Exchange::hook_time) decides with try_decide_at instead of a read of its own.
  virtual const Clock* clock() const { return nullptr; }
  // try_decide as of `now` on clock(); backends without a clock ignore `now`.
  virtual std::optional<RateDecision> try_decide_at(std::string_view key, const RateLimit& limit,
                                                    SteadyTime /*now*/) {
    return try_decide(key, limit);
  }

  // Decides without blocking the caller; `done` is called exactly once, from any thread (the
  // caller re-posts to its own executor). Backends that always answer in try_decide may
  // simply call done(*try_decide(...)).
  virtual void decide_async(std::string key, RateLimit limit,
                            std::function<void(RateDecision)> done) = 0;
};

}  // namespace sluice::resilience
