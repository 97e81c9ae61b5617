// Forwarding rules: the upstream target after strip_prefix, hop-by-hop fields removed.
#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>

#include "upstream/forwarding.hpp"

namespace sluice::upstream {
namespace {

TEST(Forwarding, TargetsAndHopByHop) {
  EXPECT_EQ(upstream_target("/api/users?x=1", "/api"), "/users?x=1");
  EXPECT_EQ(upstream_target("/api", "/api"), "/");
  EXPECT_EQ(upstream_target("/apix", "/api"), "/x");
  EXPECT_EQ(upstream_target("http://h.example/a/b", ""), "/a/b");
  EXPECT_EQ(upstream_target("http://h.example", ""), "/");
  boost::beast::http::fields f;
  f.set("Connection", "close, X-A");
  f.set("X-A", "1");
  f.set("Keep-Alive", "5");
  f.set("Proxy-Foo", "1");
  f.set("X-B", "2");
  strip_hop_by_hop(f);
  EXPECT_EQ(f.count("X-A") + f.count("Connection") + f.count("Keep-Alive") + f.count("Proxy-Foo"),
            0u);
  EXPECT_EQ(f["X-B"], "2");
}

}  // namespace
}  // namespace sluice::upstream
