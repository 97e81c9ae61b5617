// CidrSet — address ranges such as "10.0.0.0/8", "::1/128" or a bare "192.0.2.7", for the
// proxies whose X-Forwarded-* headers are trusted.
//
//   CidrSet trusted;
//   std::string error;
//   if (!trusted.add("10.0.0.0/8", error)) report(error);
//   trusted.contains("10.1.2.3");   // true
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::net {

class CidrSet {
 public:
  bool add(const std::string& text, std::string& error);
  bool contains(std::string_view address) const;
  bool empty() const { return ranges_.empty(); }

 private:
  struct Range {
    std::array<std::uint8_t, 16> bytes{};  // IPv4 as IPv4-mapped IPv6
    int prefix = 128;
  };
  std::vector<Range> ranges_;
};

}  // namespace sluice::net
