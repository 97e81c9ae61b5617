// The retry budget: retries allowed up to a share of the active requests, with a floor.
#include <gtest/gtest.h>

#include <thread>

#include "observe/metrics/sharded.hpp"
#include "upstream/retry_budget.hpp"

namespace sluice::upstream {
namespace {

TEST(RetryBudget, AllowsMinConcurrencyThenAShareOfActiveRequests) {
  RetryBudget budget(20.0, 2);
  for (int i = 0; i < 10; ++i)
    budget.request_started();
  EXPECT_TRUE(budget.try_start_retry());
  EXPECT_TRUE(budget.try_start_retry());
  EXPECT_FALSE(budget.try_start_retry()) << "20% of 10 = 2";
  for (int i = 0; i < 10; ++i)
    budget.request_started();
  EXPECT_TRUE(budget.try_start_retry()) << "20% of 20 = 4";
  EXPECT_TRUE(budget.try_start_retry());
  EXPECT_FALSE(budget.try_start_retry());
  budget.retry_finished();
  EXPECT_TRUE(budget.try_start_retry());
  RetryBudget none(0.0, 0);
  none.request_started();
  EXPECT_FALSE(none.try_start_retry());
}

// Each worker counts its requests on its own shard; the budget is the share of all of them, and
// a request that finishes on another thread than it started on still nets out.
TEST(RetryBudget, TheShareIsOfEveryWorkersRequests) {
  RetryBudget budget(20.0, 0);
  auto on_worker = [&](std::size_t worker, int started, int finished) {
    std::thread([&, worker] {
      observe::claim_shard_index(worker);
      for (int i = 0; i < started; ++i)
        budget.request_started();
      for (int i = 0; i < finished; ++i)
        budget.request_finished();
    }).join();
  };
  on_worker(0, 10, 0);
  on_worker(1, 10, 0);
  EXPECT_EQ(budget.active_requests(), 20);
  EXPECT_EQ(budget.limit(), 4) << "20% of both workers' 20";
  on_worker(1, 0, 15);  // five of worker 0's requests end on worker 1
  EXPECT_EQ(budget.active_requests(), 5);
  EXPECT_EQ(budget.limit(), 1);
}

}  // namespace
}  // namespace sluice::upstream
