// The CIDR set: IPv4, IPv6 and v4-mapped addresses, single hosts, bad input refused.
#include <gtest/gtest.h>

#include <string>

#include "net/cidr.hpp"

namespace sluice::net {
namespace {

TEST(Cidr, MatchesV4V6AndMappedAddresses) {
  CidrSet set;
  std::string error;
  ASSERT_TRUE(set.add("10.0.0.0/8", error));
  ASSERT_TRUE(set.add("::1", error));
  ASSERT_TRUE(set.add("192.168.1.7", error));
  EXPECT_TRUE(set.contains("10.200.3.4"));
  EXPECT_TRUE(set.contains("::ffff:10.1.1.1"));
  EXPECT_TRUE(set.contains("::1"));
  EXPECT_TRUE(set.contains("192.168.1.7"));
  EXPECT_FALSE(set.contains("192.168.1.8"));
  EXPECT_FALSE(set.contains("11.0.0.1"));
  EXPECT_FALSE(set.contains("not an address"));
  EXPECT_FALSE(set.add("10.0.0.0/33", error));
  EXPECT_FALSE(set.add("banana", error));
}

}  // namespace
}  // namespace sluice::net
