#include "observe/access_log/queue_budget.hpp"

#include <gtest/gtest.h>

namespace sluice::observe {
namespace {

TEST(QueueBudget, ReservesAChunkAndNeverMoreThanTheBounds) {
  QueueBudget budget(64, 1 << 20, 2);  // chunks: 64 / 8 = 8 lines, 1 MiB / 8 = 128 KiB
  QueueBudget::Credit a;
  ASSERT_TRUE(budget.refill(a, 100));
  EXPECT_EQ(a.lines, 8u);
  EXPECT_EQ(a.bytes, 128u << 10);
  // Room for 64 lines in all: seven more chunks, then nothing.
  QueueBudget::Credit others[7];
  for (auto& c : others)
    ASSERT_TRUE(budget.refill(c, 100));
  QueueBudget::Credit late;
  EXPECT_FALSE(budget.refill(late, 100));
  EXPECT_EQ(late.lines, 0u);
  // What a drain wrote comes back.
  budget.give_back(3, 300);
  ASSERT_TRUE(budget.refill(late, 100));
  EXPECT_EQ(late.lines, 3u);
}

TEST(QueueBudget, ARefillFirstReturnsTheCreditItReplaces) {
  QueueBudget budget(4, 4096, 1);  // one shard: chunks of 1 line, 1024 bytes
  QueueBudget::Credit c;
  ASSERT_TRUE(budget.refill(c, 10));
  EXPECT_EQ(c.lines, 1u);
  EXPECT_EQ(c.bytes, 1024u);
  // A line larger than the credit's bytes: the credit goes back and a larger one is taken.
  ASSERT_TRUE(budget.refill(c, 3000));
  EXPECT_EQ(c.lines, 1u);
  EXPECT_EQ(c.bytes, 3000u);
  // More than the whole byte bound: refused, and the credit it held is back in the budget.
  EXPECT_FALSE(budget.refill(c, 5000));
  EXPECT_EQ(c.lines, 0u);
  EXPECT_EQ(c.bytes, 0u);
  QueueBudget::Credit all[4];
  for (auto& x : all)
    ASSERT_TRUE(budget.refill(x, 1024));
  EXPECT_FALSE(budget.refill(c, 1));  // 4 lines reserved: the line bound
}

}  // namespace
}  // namespace sluice::observe
