#include "middleware/fallback/fallback_rule.hpp"

#include <algorithm>

namespace sluice::middleware {

FallbackRule FallbackRule::parse(const Settings& s) {
  FallbackRule r;
  for (const auto& text : s.strings("status")) {
    if (text.size() == 3 && text[1] == 'x' && text[2] == 'x' && text[0] >= '1' && text[0] <= '5') {
      r.classes_.push_back(text[0] - '0');
    } else {
      int status = 0;
      try {
        status = std::stoi(text);
      } catch (...) {
      }
      if (status < 100 || status > 599)
        s.error("status", "expected statuses (503) or classes (5xx), got \"" + text + "\"");
      else
        r.statuses_.push_back(status);
    }
  }
  r.details_ = s.strings("detail");
  r.breaker_open_ = s.boolean("breaker_open", false);
  r.timeout_ = s.boolean("timeout", false);
  r.upstream_error_ = s.boolean("upstream_error", false);
  r.concurrency_limited_ = s.boolean("concurrency_limited", false);
  r.rate_limited_ = s.boolean("rate_limited", false);
  r.exception_ = s.boolean("exception", false);
  r.any_outcome_key_ = !r.statuses_.empty() || !r.classes_.empty() || !r.details_.empty() ||
                       r.breaker_open_ || r.timeout_ || r.upstream_error_ ||
                       r.concurrency_limited_ || r.rate_limited_ || r.exception_;
  if (s.has("route_p99_above_ms")) r.p99_above_ = s.millis("route_p99_above_ms", {});
  if (s.has("user_tier")) {
    Settings tier = s.child("user_tier");
    if (tier.has("header")) r.tier_header_ = tier.string("header");
    r.tiers_ = tier.strings("in");
    if (r.tiers_.empty()) tier.error("in", "list the tiers this fallback is for, e.g. [vip]");
  }
  r.before_handler_ = s.boolean("before_handler", false);
  if (r.before_handler_ && r.any_outcome_key_) {
    s.error("before_handler",
            "there is no outcome before the handler: only route_p99_above_ms and user_tier can "
            "go with it");
  } else if (r.before_handler_ && !r.p99_above_ && r.tiers_.empty()) {
    s.error("before_handler",
            "needs route_p99_above_ms or user_tier (alone it would answer every request without "
            "the handler)");
  }
  return r;
}

bool FallbackRule::outcome_matches(const Exchange& ex) const {
  const int status = ex.response().status();
  const std::string_view detail = ex.detail();
  if (!any_outcome_key_) return status >= 500 || ex.error() != nullptr;
  if (std::find(statuses_.begin(), statuses_.end(), status) != statuses_.end()) return true;
  if (std::find(classes_.begin(), classes_.end(), status / 100) != classes_.end()) return true;
  if (std::find(details_.begin(), details_.end(), detail) != details_.end()) return true;
  if (breaker_open_ && detail == "circuit_open") return true;
  if (timeout_ && (status == 504 || detail == "upstream_timeout")) return true;
  if (upstream_error_ && (status == 502 || detail == "upstream_unreachable")) return true;
  if (concurrency_limited_ && detail == "concurrency_limited") return true;
  if (rate_limited_ && detail == "rate_limited") return true;
  if (exception_ && ex.error() != nullptr) return true;
  return false;
}

bool FallbackRule::matches(const Exchange& ex, const RuleContext& ctx) const {
  if (!before_handler_ && !outcome_matches(ex)) return false;
  if (p99_above_ && !(ctx.route_p99 > *p99_above_)) return false;
  if (!tiers_.empty()) {
    std::string_view tier =
        tier_header_ ? ex.request().header(*tier_header_) : std::string_view(ex.context().tier());
    if (std::find(tiers_.begin(), tiers_.end(), tier) == tiers_.end()) return false;
  }
  return true;
}

}  // namespace sluice::middleware
