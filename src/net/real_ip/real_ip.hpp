// RealIp — the client's address when sluice runs behind proxies or load balancers, taken from
// X-Forwarded-For only as far as the proxies that wrote it are trusted: nginx's real_ip module
// (set_real_ip_from + real_ip_recursive on) or Envoy's xff_num_trusted_hops.
//
//   real_ip: { trusted_proxies: ["10.0.0.0/8"] }     # or: real_ip: { trusted_hops: 1 }
//   RealIpPolicy p = ...;                               // read_real_ip(settings.child("real_ip"))
//   std::string ip = p.client_address("10.0.0.7", {"203.0.113.9, 10.0.0.3"});  // "203.0.113.9"
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/cidr.hpp"
#include "sluice/settings.hpp"

namespace sluice::net {

class RealIpPolicy {
 public:
  // Exactly one of the two ways is configured (read_real_ip refuses both):
  // - trusted_proxies: a peer in the set vouches for the entry before it in X-Forwarded-For;
  //   the walk goes from the right and stops at the first address not in the set.
  // - trusted_hops: this many proxies stand in front of sluice, the nearest being the peer;
  //   the client is the trusted_hops-th entry from the right of X-Forwarded-For.
  net::CidrSet trusted_proxies;
  int trusted_hops = 0;
  // Read the RFC 7239 `Forwarded` header's for= parameters instead of X-Forwarded-For
  // (`header: forwarded`); the walk is the same.
  bool use_forwarded = false;

  bool enabled() const { return trusted_hops > 0 || !trusted_proxies.empty(); }
  // True when X-Forwarded-For from this peer is believed (and so passed on by the proxy).
  bool trusts(std::string_view peer) const;
  // The client's address for a request from `peer` carrying these X-Forwarded-For field
  // values, in order. Falls back to `peer` when the header says nothing usable:
  // - trusted_proxies: an untrusted peer, or no entries; an entry that is not an address
  //   stops the walk at the last trusted address;
  // - trusted_hops: fewer entries than hops (as Envoy), or that entry not an address.
  std::string client_address(std::string_view peer,
                             std::span<const std::string_view> forwarded_for) const;
  // The header the addresses come from: "x-forwarded-for" or "forwarded".
  std::string_view header() const { return use_forwarded ? "forwarded" : "x-forwarded-for"; }
};

// The policy of one config load, in its ConfigBuild::extras, for handlers that forward the
// client address (the proxy's X-Forwarded-For); `policy` is null without `real_ip:`.
struct RealIpOfConfig {
  std::shared_ptr<const RealIpPolicy> policy;
};

// The for= values of RFC 7239 Forwarded field values, one per element, left to right, quotes
// removed ("for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"" -> "192.0.2.60",
// "[2001:db8::1]:4711"); an element without for= gives "" (not an address).
std::vector<std::string> forwarded_for_values(std::span<const std::string_view> fields);

// Reads the top-level `real_ip:` map; null when absent or empty. Errors go to `s`.
std::shared_ptr<const RealIpPolicy> read_real_ip(const Settings& s);

// One X-Forwarded-For entry as a normalized address ("[2001:db8::1]:443" -> "2001:db8::1",
// "192.0.2.1:80" -> "192.0.2.1"); empty when it is not an IP address.
std::string forwarded_entry_address(std::string_view entry);

}  // namespace sluice::net
