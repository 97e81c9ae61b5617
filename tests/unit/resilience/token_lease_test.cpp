// Workers leasing a few tokens of a key's shared bucket at a time (LocalRateLimiter with
// leases on): what the limit still guarantees, and what the lease bound allows.
#include <gtest/gtest.h>

#include <cstddef>
#include <thread>

#include "observe/metrics/sharded.hpp"
#include "resilience/local_rate_limiter.hpp"
#include "resilience/token_lease.hpp"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

// Up to n decisions on `key` from a fresh thread that claimed worker shard `worker` (as a gateway
// worker does; a later call for the same worker finds its leases), stopping at the first denial.
// Returns how many were allowed.
int on_worker(std::size_t worker, LocalRateLimiter& limiter, const RateLimit& limit, int n) {
  int allowed = 0;
  std::thread([&] {
    observe::claim_shard_index(worker);
    for (int i = 0; i < n; ++i) {
      if (!limiter.try_decide("k", limit)->allowed) break;
      ++allowed;
    }
  }).join();
  return allowed;
}

TEST(TokenLease, LeaseSizeKeepsTheWorkersLeftoversWithinATenthOfTheBurst) {
  EXPECT_EQ(lease_size({.rate_per_second = 1e6, .burst = 1e5}, 3), kMaxLeaseTokens);
  EXPECT_EQ(lease_size({.rate_per_second = 10, .burst = 100}, 3), 4u);  // 3 * 3 <= 10
  EXPECT_EQ(lease_size({.rate_per_second = 10, .burst = 20}, 2), 2u);
  EXPECT_EQ(lease_size({.rate_per_second = 10, .burst = 19}, 2), 1u);  // no lease
  EXPECT_EQ(lease_size({.rate_per_second = 10, .burst = 0}, 2), 1u);
}

// Two workers taking turns drain the bucket: every lease is spent before its worker asks the
// bucket again, so at a frozen time exactly the burst passes, as without leases; and after a
// second exactly the second's tokens.
TEST(TokenLease, WorkersTakingTurnsAdmitExactlyTheBucket) {
  FakeClock clock;
  LocalRateLimiter limiter(clock, 100, 16, /*leases=*/true);
  const RateLimit limit{.rate_per_second = 100, .burst = 1000};
  ASSERT_GT(lease_size(limit, observe::shard_count() - 1), 1u);
  int allowed = 0;
  for (int turn = 0; turn < 400; ++turn)
    allowed += on_worker(std::size_t(turn % 2), limiter, limit, 7);
  EXPECT_EQ(allowed, 1000);
  clock.advance(std::chrono::seconds(1));
  allowed = 0;
  for (int turn = 0; turn < 100; ++turn)
    allowed += on_worker(std::size_t(turn % 2), limiter, limit, 3);
  EXPECT_EQ(allowed, 100);
}

// A worker's unspent lease is missing from the bucket (the other worker is denied earlier, by
// at most lease_size - 1), and comes back once the lease has ended: over the whole span exactly
// burst + rate * elapsed pass.
TEST(TokenLease, AnEndedLeaseGivesItsTokensBack) {
  FakeClock clock;
  LocalRateLimiter limiter(clock, 100, 16, /*leases=*/true);
  const RateLimit limit{.rate_per_second = 100, .burst = 1000};
  const int size = int(lease_size(limit, observe::shard_count() - 1));
  EXPECT_EQ(on_worker(0, limiter, limit, 1), 1);  // worker 0 now holds size - 1 tokens
  EXPECT_EQ(on_worker(1, limiter, limit, 5000), 1000 - size);
  clock.advance(kLeaseTtl + milliseconds(5));  // 10.5 tokens more
  int allowed = 0;
  for (int turn = 0; turn < 100; ++turn)
    allowed += on_worker(std::size_t(turn % 2), limiter, limit, 3);
  EXPECT_EQ(1 + (1000 - size) + allowed, 1000 + 10);
}

// Threads that are not workers (and a limiter without leases) decide on the shared bucket:
// exact figures, one token at a time.
TEST(TokenLease, NonWorkerThreadsDecideOnTheSharedBucket) {
  FakeClock clock;
  LocalRateLimiter limiter(clock, 100, 16, /*leases=*/true);
  const RateLimit limit{.rate_per_second = 100, .burst = 1000};
  EXPECT_EQ(limiter.try_decide("k", limit)->remaining, 999);
  EXPECT_EQ(limiter.try_decide("k", limit)->remaining, 998);
}

// A reload's new limit ends a worker's lease: the next decision is under the new limit.
TEST(TokenLease, ANewLimitEndsTheLease) {
  FakeClock clock;
  LocalRateLimiter limiter(clock, 100, 16, /*leases=*/true);
  const RateLimit big{.rate_per_second = 100, .burst = 1000};
  EXPECT_EQ(on_worker(0, limiter, big, 1), 1);
  const RateLimit small{.rate_per_second = 1, .burst = 5};  // no leases at this size
  EXPECT_EQ(on_worker(0, limiter, small, 100), 5 - 1) << "the debt of big's one request stays";
}

}  // namespace
}  // namespace sluice::resilience
