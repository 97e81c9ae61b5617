#include "chaos/client_networks.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace sluice::chaos {

namespace {
// Parses an address into 16 bytes (IPv4 in the first 4); returns the family or 0.
int parse_address(std::string_view text, std::array<std::uint8_t, 16>& out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return 0;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  out.fill(0);
  if (inet_pton(AF_INET, buf, out.data()) == 1) return 4;
  if (inet_pton(AF_INET6, buf, out.data()) == 1) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out.data(), kMapped, 12) == 0) {
      std::memmove(out.data(), out.data() + 12, 4);
      std::memset(out.data() + 4, 0, 12);
      return 4;
    }
    return 6;
  }
  return 0;
}

bool prefix_equal(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                  int bits) {
  const int whole = bits / 8;
  if (std::memcmp(a.data(), b.data(), static_cast<std::size_t>(whole)) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[static_cast<std::size_t>(whole)] & mask) == (b[static_cast<std::size_t>(whole)] & mask);
}
}  // namespace

std::string ClientNetworks::add(std::string_view cidr) {
  Block b;
  const auto slash = cidr.find('/');
  b.family = parse_address(cidr.substr(0, slash), b.bytes);
  if (b.family == 0) return "\"" + std::string(cidr) + "\" is not an IP address or CIDR block";
  const int max = b.family == 4 ? 32 : 128;
  b.prefix = max;
  if (slash != std::string_view::npos) {
    auto len = cidr.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), b.prefix);
    if (ec != std::errc() || ptr != len.data() + len.size() || b.prefix < 0 || b.prefix > max)
      return "\"" + std::string(cidr) + "\": prefix length must be 0.." + std::to_string(max);
  }
  blocks_.push_back(b);
  return "";
}

bool ClientNetworks::contains(std::string_view address) const {
  std::array<std::uint8_t, 16> bytes{};
  const int family = parse_address(address, bytes);
  if (family == 0) return false;
  for (const auto& b : blocks_) {
    if (b.family == family && prefix_equal(b.bytes, bytes, b.prefix)) return true;
  }
  return false;
}

}  // namespace sluice::chaos
