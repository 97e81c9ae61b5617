// FallbackRule — the `when:` of one fallback: which outcomes and which request context it
// answers for.
//
//   when: { status: [5xx], breaker_open: true }                 # any of these outcomes
//   when: { route_p99_above_ms: 800, user_tier: { in: [vip] } }   # the authenticated tier
//   when: { user_tier: { header: X-User-Tier, in: [vip] } }        # a request header instead
//   when: { before_handler: true, route_p99_above_ms: 800, user_tier: { in: [vip] } }
//
// Outcome keys (status, detail, breaker_open, timeout, upstream_error, concurrency_limited,
// rate_limited, exception) match when ANY of them matches; with none given, any failure matches
// (status >= 500 or an exception). Context keys (user_tier, route_p99_above_ms) must ALL match.
// `before_handler: true` evaluates the rule before the handler is called, on the context keys
// alone (there is no outcome yet, so outcome keys are an error with it): a slow route is
// short-circuited for those requests, even though it has not failed.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "sluice/exchange.hpp"
#include "sluice/settings.hpp"

namespace sluice::middleware {

struct RuleContext {
  std::chrono::nanoseconds route_p99{0};  // the route's recent p99 (0: no samples)
};

class FallbackRule {
 public:
  // Reads a `when:` map; errors go through `s`.
  static FallbackRule parse(const Settings& s);

  bool matches(const Exchange& ex, const RuleContext& ctx) const;
  bool uses_route_p99() const { return p99_above_.has_value(); }
  // Tried in pre_handle instead of after the outcome (then only there).
  bool before_handler() const { return before_handler_; }
  // True when `detail` is one of the rule's `detail:` values.
  bool matches_detail(std::string_view detail) const {
    for (const auto& d : details_)
      if (d == detail) return true;
    return false;
  }

 private:
  bool outcome_matches(const Exchange& ex) const;

  std::vector<int> statuses_;  // exact statuses
  std::vector<int> classes_;   // 5 for "5xx"
  std::vector<std::string> details_;
  bool breaker_open_ = false;
  bool timeout_ = false;
  bool upstream_error_ = false;
  bool concurrency_limited_ = false;
  bool rate_limited_ = false;
  bool exception_ = false;
  bool any_outcome_key_ = false;
  bool before_handler_ = false;
  std::optional<std::chrono::milliseconds> p99_above_;
  // Unset: the Context's tier, which only an authentication middleware (jwt, basic_auth,
  // ext_auth) sets. A header is whatever the client sent, unless such a middleware sets it.
  std::optional<std::string> tier_header_;
  std::vector<std::string> tiers_;
};

}  // namespace sluice::middleware
