#include "upstream/endpoint.hpp"

#include <algorithm>

namespace sluice::upstream {

bool EndpointHealth::record_failure(SteadyTime now, const OutlierPolicy& policy) {
  if (policy.consecutive_failures <= 0) return false;
  const int streak = consecutive_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (streak < policy.consecutive_failures || ejected(now)) return false;
  consecutive_.store(0, std::memory_order_relaxed);
  // After a quiet period as long as the longest ejection, the backoff starts over.
  const auto last_until = ejected_until_.load(std::memory_order_relaxed);
  const auto quiet = std::chrono::duration_cast<SteadyTime::duration>(policy.max_ejection);
  if (last_until != 0 && now.time_since_epoch().count() - last_until > quiet.count())
    ejections_.store(0, std::memory_order_relaxed);
  const int k = std::min(ejections_.fetch_add(1, std::memory_order_relaxed), 20);
  auto period = policy.base_ejection * (std::int64_t{1} << k);
  period = std::min(period, std::max(policy.max_ejection, policy.base_ejection));
  const auto until = now + std::chrono::duration_cast<SteadyTime::duration>(period);
  ejected_until_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  return true;
}

}  // namespace sluice::upstream
