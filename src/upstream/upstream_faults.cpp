#include "upstream/upstream_faults.hpp"

#include "core/seeded_draw.hpp"

namespace sluice::upstream {

void UpstreamFaults::set(const std::string& cluster, UpstreamFault fault) {
  std::lock_guard lock(mutex_);
  auto& entry = faults_[cluster];
  entry.fault = std::move(fault);
  any_.store(true, std::memory_order_release);
}

void UpstreamFaults::clear(const std::string& cluster) {
  std::lock_guard lock(mutex_);
  faults_.erase(cluster);
  any_.store(!faults_.empty(), std::memory_order_release);
}

void UpstreamFaults::set_seed(std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  seed_ = seed;
  for (auto& [name, entry] : faults_)
    entry.draws = 0;
}

std::optional<UpstreamFault> UpstreamFaults::check(std::string_view cluster) {
  if (!any_.load(std::memory_order_acquire)) return std::nullopt;
  std::optional<UpstreamFault> selected;
  {
    std::lock_guard lock(mutex_);
    auto it = faults_.find(cluster);
    if (it == faults_.end()) return std::nullopt;
    Entry& e = it->second;
    if (e.fault.percentage < 100.0) {
      const std::uint64_t n = e.draws++;
      if (unit_draw(stream_seed(seed_, cluster), n) * 100.0 >= e.fault.percentage)
        return std::nullopt;
    }
    selected = e.fault;
  }
  if (selected->on_inject) selected->on_inject();
  return selected;
}

std::map<std::string, UpstreamFault> UpstreamFaults::active() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, UpstreamFault> out;
  for (const auto& [name, entry] : faults_)
    out.emplace(name, entry.fault);
  return out;
}

}  // namespace sluice::upstream
