// Rollout — which requests a middleware runs for: a percentage of requests, stable per request
// id (or client, user, or a header's value) with a seed, and/or every request carrying a header.
// The seed's "grey release of a middleware" (A/B by percentage or header).
//
//   Rollout r({.by = RolloutRule::By::kHeader, .by_header = "X-User", .seed = 7}, 10.0);
//   if (!r.selects(ex)) ...   // 90 % of users, always the same ones, skip the middleware
//   r.set_percent(50);        // at run time (admin API), no reload
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "sluice/exchange.hpp"

namespace sluice::middleware {

struct RolloutRule {
  enum class By { kRequestId, kClientIp, kUser, kHeader };
  By by = By::kRequestId;
  std::string by_header;     // for kHeader
  std::uint64_t seed = 0;    // another seed picks another slice of the same population
  std::string match_header;  // requests with this header are always in (empty: no match rule)
  std::string match_value;   // ... with this value (empty: any value)
};

class Rollout {
 public:
  Rollout(RolloutRule rule, double percent);
  // True when the middleware runs for this request.
  bool selects(const Exchange& ex) const;
  double percent() const;
  void set_percent(double percent);  // clamped to [0, 100]
  const RolloutRule& rule() const { return rule_; }

  // The request's position in [0, 10000) for `key`: the same key and seed, the same position.
  static std::uint32_t position(std::uint64_t seed, std::string_view key);

 private:
  RolloutRule rule_;
  std::atomic<std::uint32_t> basis_points_;  // percent x 100
};

}  // namespace sluice::middleware
