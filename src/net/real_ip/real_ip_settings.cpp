// The `real_ip:` config section, read into a RealIpPolicy. Apart from real_ip.cpp so the policy
// itself links without the config machinery (the libFuzzer targets use it).
#include "net/real_ip/real_ip.hpp"

namespace sluice::net {

std::shared_ptr<const RealIpPolicy> read_real_ip(const Settings& s) {
  auto policy = std::make_shared<RealIpPolicy>();
  const auto cidrs = s.strings("trusted_proxies");
  for (const auto& cidr : cidrs) {
    std::string error;
    if (!policy->trusted_proxies.add(cidr, error)) s.error("trusted_proxies", error);
  }
  policy->trusted_hops = static_cast<int>(s.integer("trusted_hops", 0, 0, 16));
  if (policy->trusted_hops > 0 && !cidrs.empty()) {
    s.error("trusted_hops",
            "use either trusted_proxies (addresses of the proxies in front) or trusted_hops "
            "(how many there are), not both");
  }
  policy->use_forwarded =
      s.choice("header", {"x-forwarded-for", "forwarded"}, "x-forwarded-for") == "forwarded";
  if (!policy->enabled()) return nullptr;
  return policy;
}

}  // namespace sluice::net
