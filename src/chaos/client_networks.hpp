// ClientNetworks — a list of CIDR blocks (IPv4 and IPv6) that a client address is checked
// against; used to accept header-driven faults only from known test clients.
//
//   ClientNetworks nets;
//   if (auto error = nets.add("10.0.0.0/8"); !error.empty()) report(error);
//   bool ok = nets.contains("10.1.2.3");
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::chaos {

class ClientNetworks {
 public:
  // Adds "addr/len" or a bare address (a single host); returns an error message or "".
  std::string add(std::string_view cidr);
  bool empty() const { return blocks_.empty(); }
  // False for addresses that do not parse. IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4.
  bool contains(std::string_view address) const;

 private:
  struct Block {
    std::array<std::uint8_t, 16> bytes{};
    int family = 4;  // 4 or 6
    int prefix = 32;
  };
  std::vector<Block> blocks_;
};

}  // namespace sluice::chaos
