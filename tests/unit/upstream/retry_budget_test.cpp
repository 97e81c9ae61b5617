// The retry budget: retries allowed up to a share of the active requests, with a floor.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace sluice::upstream
