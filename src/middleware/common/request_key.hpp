// RequestKey — what a limit or breaker is counted per: the client IP, a header, the route, the
// authenticated user or tier (set by jwt, basic_auth or ext_auth), or a combination, read from
// config as one name or a list of names.
//
//   key: client_ip                      # or route, user, tier, "header:X-Tenant"
//   key: [client_ip, "header:X-Tenant"] # one bucket per (ip, tenant)
//   auto key = RequestKey::parse(s, "key", "client_ip");  std::string k = key.of(ex);
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sluice/exchange.hpp"
#include "sluice/settings.hpp"

namespace sluice::middleware {

class RequestKey {
 public:
  enum class Source { kClientIp, kHeader, kRoute, kUser, kTier };
  struct Part {
    Source source = Source::kRoute;
    std::string header;  // for kHeader
  };

  // Reads `key` (a name or a list of names); reports unknown names through `s`.
  static RequestKey parse(const Settings& s, std::string_view key, std::string_view fallback);
  // Parses one name ("client_ip", "route", "user", "tier", "header:X-Name"); false when unknown.
  static bool parse_part(std::string_view text, Part& out);

  // The parts' values joined by '|'; an absent header, user or tier counts as "-" (so all
  // anonymous requests share one bucket: put an authentication middleware first).
  std::string of(const Exchange& ex) const;
  // The same, appended to `out` (a caller's reused buffer: no string of its own).
  void append_to(const Exchange& ex, std::string& out) const;
  // "client_ip|header:X-Tenant": the config spelling, for logs and the admin API.
  std::string describe() const;
  // True when the key is the route alone (one value per middleware instance).
  bool is_route_only() const { return parts_.size() == 1 && parts_[0].source == Source::kRoute; }
  const std::vector<Part>& parts() const { return parts_; }

 private:
  std::vector<Part> parts_;
};

}  // namespace sluice::middleware
