// TokenLease — a worker's own stock of a few tokens of one key's shared token bucket, so that
// most of its decisions on a busy key touch no memory another worker writes (no shard lock, no
// CAS on the bucket). A worker takes lease_size() tokens at once from the shared bucket when its
// stock is empty, spends them alone, and gives back what is left when the lease ends.
//
//   const uint32_t n = lease_size(limit, workers);      // 1: no lease, every decision is shared
//   if (lease.left > 0 && now_ns < lease.until_ns) { --lease.left; return allowed; }
//
// What it changes in the limit's meaning (docs/RESILIENCE.md, rate_limit, "Worker leases"): every
// admitted request still spends a token of the shared bucket, so over a long span nothing more
// is admitted; but tokens taken early may be spent a little later, so in any interval at most
// workers * (n - 1) requests more than burst + rate * elapsed pass, and a worker may be denied
// while the others hold at most (workers - 1) * (n - 1) tokens (given back within kLeaseTtl).
// lease_size() keeps workers * (n - 1) within a tenth of the burst.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "resilience/rate_limiter_backend.hpp"
#include "sluice/clock.hpp"

namespace sluice::resilience {

// The most tokens one lease holds; 64 takes the shared bucket's lock once per 64 requests.
inline constexpr uint32_t kMaxLeaseTokens = 64;
// How long a lease's tokens may be spent; what is left then goes back to the shared bucket.
inline constexpr Nanos kLeaseTtl = std::chrono::milliseconds(100);

// Tokens per lease for `limit` with up to `workers` workers holding leases at once: the largest
// n <= kMaxLeaseTokens with workers * (n - 1) <= burst / 10; 1 means no lease.
inline uint32_t lease_size(const RateLimit& limit, std::size_t workers) {
  if (!(limit.burst > 0) || workers == 0) return 1;
  const double spare = std::floor(limit.burst / (10.0 * double(workers)));
  return uint32_t(std::clamp(spare + 1.0, 1.0, double(kMaxLeaseTokens)));
}

// One worker's lease on one key; only that worker reads or writes it.
struct TokenLease {
  RateLimit limit;       // the limit it was taken under; another limit ends it
  uint32_t left = 0;     // tokens still to spend
  int64_t until_ns = 0;  // on the limiter's clock
  RateDecision last;     // the shared bucket's answer when it was taken (for the figures)
};

}  // namespace sluice::resilience
