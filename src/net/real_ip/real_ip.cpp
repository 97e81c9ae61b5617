#include "net/real_ip/real_ip.hpp"

#include <boost/asio/ip/address.hpp>
#include <vector>

namespace sluice::gateway {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The entries of all fields, left to right (a request may split the list over several fields).
std::vector<std::string_view> entries_of(std::span<const std::string_view> fields) {
  std::vector<std::string_view> out;
  for (auto value : fields) {
    while (true) {
      const auto comma = value.find(',');
      auto item = trim(value.substr(0, comma));
      if (!item.empty()) out.push_back(item);
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  return out;
}
}  // namespace

std::string forwarded_entry_address(std::string_view entry) {
  entry = trim(entry);
  if (entry.starts_with('[')) {  // "[v6]" or "[v6]:port"
    const auto close = entry.find(']');
    if (close == std::string_view::npos) return {};
    entry = entry.substr(1, close - 1);
  } else if (const auto colon = entry.find(':');
             colon != std::string_view::npos &&
             entry.find(':', colon + 1) == std::string_view::npos) {
    entry = entry.substr(0, colon);  // "v4:port": one colon only, so never an IPv6 address
  }
  if (entry.empty() || entry.find('%') != std::string_view::npos) return {};  // no zone ids
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(entry), ec);
  if (ec) return {};
  return address.to_string();
}

bool RealIpPolicy::trusts(std::string_view peer) const {
  return trusted_hops > 0 || trusted_proxies.contains(peer);
}

std::string RealIpPolicy::client_address(std::string_view peer,
                                         std::span<const std::string_view> forwarded_for) const {
  if (!enabled() || forwarded_for.empty()) return std::string(peer);
  const auto entries = entries_of(forwarded_for);
  if (trusted_hops > 0) {
    if (entries.size() < static_cast<std::size_t>(trusted_hops)) return std::string(peer);
    auto address = forwarded_entry_address(entries[entries.size() - trusted_hops]);
    return address.empty() ? std::string(peer) : address;
  }
  if (!trusted_proxies.contains(peer)) return std::string(peer);
  std::string client(peer);
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    auto address = forwarded_entry_address(*it);
    if (address.empty()) break;  // garbage: the last trusted hop is as far as we can see
    client = std::move(address);
    if (!trusted_proxies.contains(client)) break;  // the first untrusted address: the client
  }
  return client;
}

}  // namespace sluice::gateway
