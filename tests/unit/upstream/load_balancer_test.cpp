// Load balancing over a cluster's endpoints: round robin skipping ejected ones, the panic
// rule when too few are left, least-request between two, and which clusters keep in-flight counts.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/clock.hpp"
#include "upstream/endpoint.hpp"
#include "upstream/load_balancer.hpp"

namespace sluice::upstream {
namespace {

std::vector<std::unique_ptr<Endpoint>> endpoints(int n) {
  std::vector<std::unique_ptr<Endpoint>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_unique<Endpoint>());
    out.back()->text = "e" + std::to_string(i);
  }
  return out;
}

TEST(LoadBalancer, RoundRobinSkipsEjectedAndPanicsWhenTooFewAreLeft) {
  FakeClock clock;
  auto eps = endpoints(4);
  LoadBalancer lb(LbPolicy::kRoundRobin, 50);
  std::map<int, int> seen;
  for (int i = 0; i < 8; ++i)
    seen[lb.pick(eps, clock.now(), -1)]++;
  EXPECT_EQ(seen, (std::map<int, int>{{0, 2}, {1, 2}, {2, 2}, {3, 2}}));

  OutlierPolicy policy;
  policy.consecutive_failures = 1;
  eps[1]->health.record_failure(clock.now(), policy);
  seen.clear();
  for (int i = 0; i < 30; ++i)
    seen[lb.pick(eps, clock.now(), -1)]++;
  EXPECT_EQ(seen.count(1), 0u);
  eps[2]->health.record_failure(clock.now(), policy);
  eps[3]->health.set_check_passing(false);  // 1 of 4 usable: below 50%, panic
  seen.clear();
  for (int i = 0; i < 40; ++i)
    seen[lb.pick(eps, clock.now(), -1)]++;
  EXPECT_EQ(seen.size(), 4u) << "panic spreads over every endpoint";
  EXPECT_NE(lb.pick(eps, clock.now(), 0), 0) << "a retry avoids the previous endpoint";
}

TEST(LoadBalancer, LeastRequestPicksTheLessBusyOfTwo) {
  FakeClock clock;
  auto eps = endpoints(2);
  eps[0]->active = 5;
  LoadBalancer lb(LbPolicy::kLeastRequest, 50);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(lb.pick(eps, clock.now(), -1), 1);
}

// Calls keep an endpoint's in-flight count only where pick() reads it: the count is written by
// every worker, so a cluster that does not need it is spared that shared write (issue 20).
TEST(LoadBalancer, OnlyLeastRequestWithAChoiceReadsInFlightCounts) {
  EXPECT_TRUE(LoadBalancer(LbPolicy::kLeastRequest, 50).reads_in_flight(2));
  EXPECT_FALSE(LoadBalancer(LbPolicy::kLeastRequest, 50).reads_in_flight(1));
  EXPECT_FALSE(LoadBalancer(LbPolicy::kRoundRobin, 50).reads_in_flight(2));
  // A one-endpoint cluster never compares counts, whatever they are.
  FakeClock clock;
  auto one = endpoints(1);
  one[0]->active = 1000;
  EXPECT_EQ(LoadBalancer(LbPolicy::kLeastRequest, 50).pick(one, clock.now(), -1), 0);
}

}  // namespace
}  // namespace sluice::upstream
