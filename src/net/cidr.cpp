#include "net/cidr.hpp"

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <optional>

namespace sluice::net {

namespace {
std::optional<std::array<std::uint8_t, 16>> to_v6_bytes(std::string_view text, bool* v4) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  if (a.is_v4()) {
    if (v4) *v4 = true;
    return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4()).to_bytes();
  }
  if (v4) *v4 = false;
  auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) {
    if (v4) *v4 = true;
  }
  return v6.to_bytes();
}
}  // namespace

bool CidrSet::add(const std::string& text, std::string& error) {
  const auto slash = text.find('/');
  bool v4 = false;
  auto bytes = to_v6_bytes(std::string_view(text).substr(0, slash), &v4);
  if (!bytes) {
    error = "\"" + text + "\" is not an IP address or CIDR range";
    return false;
  }
  Range r{*bytes, 128};
  if (slash != std::string::npos) {
    int prefix = -1;
    const char* first = text.data() + slash + 1;
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(first, last, prefix);
    const int max = v4 ? 32 : 128;
    if (ec != std::errc() || ptr != last || prefix < 0 || prefix > max) {
      error = "\"" + text + "\": prefix length must be 0.." + std::to_string(max);
      return false;
    }
    r.prefix = v4 ? prefix + 96 : prefix;
  }
  ranges_.push_back(r);
  return true;
}

bool CidrSet::contains(std::string_view address) const {
  if (ranges_.empty()) return false;
  auto bytes = to_v6_bytes(address, nullptr);
  if (!bytes) return false;
  for (const auto& r : ranges_) {
    int bits = r.prefix;
    bool match = true;
    for (std::size_t i = 0; i < 16 && bits > 0 && match; ++i, bits -= 8) {
      const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
      match = ((*bytes)[i] & mask) == (r.bytes[i] & mask);
    }
    if (match) return true;
  }
  return false;
}

}  // namespace sluice::net
