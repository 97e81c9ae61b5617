#include "resilience/local_rate_limiter.hpp"

#include <utility>

#include "core/worker_shard.hpp"

namespace sluice::resilience {
namespace {
int64_t to_ns(SteadyTime t) {
  return std::chrono::duration_cast<Nanos>(t.time_since_epoch()).count();
}
}  // namespace

LocalRateLimiter::LocalRateLimiter(const Clock& clock, size_t max_keys, size_t shards, bool leases)
    : clock_(clock), table_(max_keys, shards) {
  if (leases) {
    leases_ = std::make_unique<WorkerLeases[]>(detail::shard_count());
    lease_mask_ = detail::shard_count() - 1;
    lease_workers_ = detail::shard_count() - 1;  // every shard but the shared last one
  }
}

LocalRateLimiter::~LocalRateLimiter() = default;

std::optional<RateDecision> LocalRateLimiter::try_decide(std::string_view key,
                                                         const RateLimit& limit) {
  return try_decide_at(key, limit, clock_.now());
}

std::optional<RateDecision> LocalRateLimiter::try_decide_at(std::string_view key,
                                                            const RateLimit& limit,
                                                            SteadyTime now) {
  if (!(limit.rate_per_second > 0) || !(limit.burst > 0)) return RateDecision{};
  if (leases_ != nullptr) {
    const size_t shard = detail::shard_index();
    if (detail::sole_writer(shard))
      return decide_leased(leases_[shard & lease_mask_], key, limit, now);
  }
  return take_shared(key, limit, now);
}

template <class Fn>
decltype(auto) LocalRateLimiter::on_bucket(std::string_view key, const RateLimit& limit, Fn&& fn) {
  return table_.with(
      key, [&] { return std::optional<TokenBucket>(std::in_place, limit); },
      [&](std::optional<TokenBucket>& bucket) {
        if (bucket->limit().rate_per_second != limit.rate_per_second ||
            bucket->limit().burst != limit.burst) {
          const SteadyTime debt = bucket->theoretical_arrival();
          bucket.emplace(limit, debt);
        }
        return fn(*bucket);
      });
}

RateDecision LocalRateLimiter::take_shared(std::string_view key, const RateLimit& limit,
                                           SteadyTime now) {
  return on_bucket(key, limit, [&](TokenBucket& bucket) { return bucket.try_acquire(now); });
}

// Unspent tokens go back to the bucket they came from; a bucket rebuilt for another limit since
// (a reload) keeps its own count. Giving back never fills a bucket beyond full.
void LocalRateLimiter::give_back(std::string_view key, const TokenLease& lease, SteadyTime now) {
  if (lease.left == 0) return;
  on_bucket(key, lease.limit,
            [&](TokenBucket& bucket) { bucket.give_back(now, double(lease.left)); });
}

// A worker spends its lease alone; when it is empty, ended or of another limit, the worker
// takes a new one of lease_size() tokens from the shared bucket, or, when the bucket no longer
// holds that many, one token as without leases: near the limit every decision is the shared
// bucket's again, so a denial is the bucket's own.
RateDecision LocalRateLimiter::decide_leased(WorkerLeases& mine, std::string_view key,
                                             const RateLimit& limit, SteadyTime now) {
  const uint32_t size = lease_size(limit, lease_workers_);
  if (size <= 1) return take_shared(key, limit, now);
  const int64_t now_ns = to_ns(now);
  auto it = mine.by_key.find(key);
  if (it != mine.by_key.end()) {
    TokenLease& lease = it->second;
    const bool same_limit =
        lease.limit.rate_per_second == limit.rate_per_second && lease.limit.burst == limit.burst;
    if (same_limit && lease.left > 0 && now_ns < lease.until_ns) {
      --lease.left;
      RateDecision d = lease.last;
      d.remaining += double(lease.left);
      return d;
    }
    give_back(key, lease, now);
    lease.left = 0;
  } else if (mine.by_key.size() >= kMaxLeasedKeys) {
    std::erase_if(mine.by_key, [&](auto& entry) {
      if (now_ns < entry.second.until_ns && entry.second.left > 0) return false;
      give_back(entry.first, entry.second, now);
      return true;
    });
    if (mine.by_key.size() >= kMaxLeasedKeys) return take_shared(key, limit, now);
  }
  uint32_t left = 0;
  RateDecision d = on_bucket(key, limit, [&](TokenBucket& bucket) {
    RateDecision lease = bucket.try_acquire(now, double(size));
    if (!lease.allowed) return bucket.try_acquire(now);
    left = size - 1;  // this request spends one of them
    return lease;
  });
  if (it == mine.by_key.end()) it = mine.by_key.emplace(std::string(key), TokenLease{}).first;
  it->second = TokenLease{limit, left, now_ns + kLeaseTtl.count(), d};
  d.remaining += double(left);
  return d;
}

void LocalRateLimiter::decide_async(std::string key, RateLimit limit,
                                    std::function<void(RateDecision)> done) {
  done(*try_decide(key, limit));
}

}  // namespace sluice::resilience
