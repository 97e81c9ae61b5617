#include "middleware/gate/rollout.hpp"

#include <algorithm>
#include <random>

namespace sluice::middleware {

Rollout::Rollout(RolloutRule rule, double percent) : rule_(std::move(rule)), basis_points_(0) {
  set_percent(percent);
}

double Rollout::percent() const {
  return basis_points_.load(std::memory_order_relaxed) / 100.0;
}

void Rollout::set_percent(double percent) {
  basis_points_.store(static_cast<std::uint32_t>(std::clamp(percent, 0.0, 100.0) * 100.0 + 0.5),
                      std::memory_order_relaxed);
}

std::uint32_t Rollout::position(std::uint64_t seed, std::string_view key) {
  // FNV-1a over the seed's bytes, then the key's, then a final mix so that nearby keys spread.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < 8; ++i) {
    h ^= (seed >> (8 * i)) & 0xff;
    h *= 0x100000001b3ULL;
  }
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return static_cast<std::uint32_t>(h % 10000);
}

bool Rollout::selects(const Exchange& ex) const {
  if (!rule_.match_header.empty()) {
    const auto value = ex.request().header(rule_.match_header);
    if (!value.empty() && (rule_.match_value.empty() || value == rule_.match_value)) return true;
  }
  const std::uint32_t points = basis_points_.load(std::memory_order_relaxed);
  if (points >= 10000) return true;
  if (points == 0) return false;
  std::string_view key;
  switch (rule_.by) {
    case RolloutRule::By::kRequestId:
      key = ex.context().request_id();
      break;
    case RolloutRule::By::kClientIp:
      key = ex.context().client_ip();
      break;
    case RolloutRule::By::kUser:
      key = ex.context().user();
      break;
    case RolloutRule::By::kHeader:
      key = ex.request().header(rule_.by_header);
      break;
  }
  if (key.empty()) {
    // Nothing to be stable on (no id yet, no user): a fair draw keeps the percentage.
    thread_local std::minstd_rand rng{std::random_device{}()};
    return std::uniform_int_distribution<std::uint32_t>(0, 9999)(rng) < points;
  }
  return position(rule_.seed, key) < points;
}

}  // namespace sluice::middleware
