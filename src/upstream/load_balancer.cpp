#include "upstream/load_balancer.hpp"

namespace sluice::upstream {

namespace {
std::uint64_t next_random() {
  thread_local std::uint64_t state =
      0x9e3779b97f4a7c15ULL ^ reinterpret_cast<std::uintptr_t>(&state);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}
}  // namespace

int LoadBalancer::pick(const std::vector<std::unique_ptr<Endpoint>>& endpoints, SteadyTime now,
                       int avoid) {
  const std::size_t n = endpoints.size();
  if (n == 0) return -1;
  if (n == 1) return 0;
  thread_local std::vector<int> usable;
  usable.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const auto& h = endpoints[i]->health;
    if (!h.ejected(now) && h.check_passing()) usable.push_back(static_cast<int>(i));
  }
  // Panic: too few usable endpoints to trust the verdicts; spread over all of them.
  if (usable.empty() ||
      usable.size() * 100 < n * static_cast<std::size_t>(panic_threshold_percent_)) {
    usable.clear();
    for (std::size_t i = 0; i < n; ++i)
      usable.push_back(static_cast<int>(i));
  }
  if (avoid >= 0 && usable.size() > 1) std::erase(usable, avoid);
  if (usable.size() == 1) return usable[0];
  if (policy_ == LbPolicy::kRoundRobin) {
    return usable[next_.fetch_add(1, std::memory_order_relaxed) % usable.size()];
  }
  const auto r = next_random();
  const int a = usable[r % usable.size()];
  int b = usable[(r >> 32) % usable.size()];
  if (b == a) b = usable[(static_cast<std::size_t>(r % usable.size()) + 1) % usable.size()];
  return endpoints[static_cast<std::size_t>(b)]->active.load(std::memory_order_relaxed) <
                 endpoints[static_cast<std::size_t>(a)]->active.load(std::memory_order_relaxed)
             ? b
             : a;
}

}  // namespace sluice::upstream
