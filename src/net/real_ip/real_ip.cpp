#include "net/real_ip/real_ip.hpp"

#include <boost/asio/ip/address.hpp>
#include <vector>

namespace sluice::net {

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

std::vector<std::string> forwarded_for_values(std::span<const std::string_view> fields) {
  std::vector<std::string> out;
  for (auto value : fields) {
    // Elements are separated by commas and parameters by semicolons, outside quoted strings.
    std::string element_for;
    bool has_element = false;
    std::size_t i = 0;
    auto end_element = [&] {
      if (has_element) out.push_back(element_for);
      element_for.clear();
      has_element = false;
    };
    while (i <= value.size()) {
      // One parameter: name=value, value a token or a quoted string.
      while (i < value.size() && (value[i] == ' ' || value[i] == '\t'))
        ++i;
      if (i >= value.size()) break;
      if (value[i] == ',') {
        end_element();
        ++i;
        continue;
      }
      if (value[i] == ';') {
        ++i;
        continue;
      }
      has_element = true;
      const auto eq = value.find('=', i);
      const auto stop = value.find_first_of(",;", i);
      if (eq == std::string_view::npos || (stop != std::string_view::npos && stop < eq)) {
        i = stop == std::string_view::npos ? value.size() : stop;  // a parameter without '='
        continue;
      }
      const auto name = trim(value.substr(i, eq - i));
      std::string param;
      i = eq + 1;
      if (i < value.size() && value[i] == '"') {
        for (++i; i < value.size() && value[i] != '"'; ++i) {
          if (value[i] == '\\' && i + 1 < value.size()) ++i;
          param += value[i];
        }
        ++i;  // the closing quote
      } else {
        const auto next = value.find_first_of(",;", i);
        param = std::string(trim(
            value.substr(i, next == std::string_view::npos ? std::string_view::npos : next - i)));
        i = next == std::string_view::npos ? value.size() : next;
      }
      if (name.size() == 3 && (name[0] | 0x20) == 'f' && (name[1] | 0x20) == 'o' &&
          (name[2] | 0x20) == 'r')
        element_for = param;
    }
    end_element();
  }
  return out;
}

std::string RealIpPolicy::client_address(std::string_view peer,
                                         std::span<const std::string_view> forwarded_for) const {
  if (!enabled() || forwarded_for.empty()) return std::string(peer);
  std::vector<std::string> forwarded;  // owns the for= values when the header is Forwarded
  std::vector<std::string_view> entries;
  if (use_forwarded) {
    forwarded = forwarded_for_values(forwarded_for);
    entries.assign(forwarded.begin(), forwarded.end());
  } else {
    entries = entries_of(forwarded_for);
  }
  if (entries.empty()) return std::string(peer);
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

}  // namespace sluice::net
