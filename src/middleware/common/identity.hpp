// Identity — what an authentication middleware does once it knows who called: the user and tier
// into the Context (read by rate_limit keys, fallback rules, the access log and spans), and,
// when configured, into request headers for the upstream. Client-sent copies of those headers
// are always removed first, so an upstream never mistakes a client's claim for a checked one.
//
//   Identity id{.user_header = "X-User", .tier_header = "X-User-Tier"};
//   id.strip(ex);                    // before the check, whatever its outcome
//   id.set(ex, "alice", "vip");      // after a successful check
#pragma once

#include <string>

#include "sluice/exchange.hpp"
#include "sluice/settings.hpp"

namespace sluice::middleware {

struct Identity {
  std::string user_header;  // empty: the upstream is not told
  std::string tier_header;

  // `user_header` and `tier_header` of a middleware's settings.
  static Identity read(const Settings& s) {
    return {s.string("user_header"), s.string("tier_header")};
  }

  void strip(Exchange& ex) const {
    if (!user_header.empty()) ex.request().remove_header(user_header);
    if (!tier_header.empty()) ex.request().remove_header(tier_header);
  }
  void set(Exchange& ex, std::string user, std::string tier) const {
    if (!user_header.empty() && !user.empty()) ex.request().set_header(user_header, user);
    if (!tier_header.empty() && !tier.empty()) ex.request().set_header(tier_header, tier);
    ex.context().set_user(std::move(user));
    ex.context().set_tier(std::move(tier));
  }
};

}  // namespace sluice::middleware
