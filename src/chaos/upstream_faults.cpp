#include "chaos/upstream_faults.hpp"

namespace sluice::chaos {

void UpstreamFaults::set(const std::string& cluster, UpstreamFault fault) {
  std::lock_guard lock(mutex_);
  faults_[cluster] = fault;
  any_.store(true, std::memory_order_release);
}

void UpstreamFaults::clear(const std::string& cluster) {
  std::lock_guard lock(mutex_);
  faults_.erase(cluster);
  any_.store(!faults_.empty(), std::memory_order_release);
}

std::optional<UpstreamFault> UpstreamFaults::check(std::string_view cluster) {
  if (!any_.load(std::memory_order_acquire)) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = faults_.find(cluster);
  if (it == faults_.end()) return std::nullopt;
  if (it->second.percentage < 100.0) {
    // A deterministic spread (every k-th request), so experiments repeat exactly.
    ++draws_;
    const double pos = static_cast<double>(draws_ % 10000) / 100.0;
    if (pos >= it->second.percentage) return std::nullopt;
  }
  return it->second;
}

std::map<std::string, UpstreamFault> UpstreamFaults::active() const {
  std::lock_guard lock(mutex_);
  return {faults_.begin(), faults_.end()};
}

}  // namespace sluice::chaos
