#include "resilience/key_table.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "resilience/token_bucket.hpp"

namespace sluice::resilience {
namespace {

int make_zero() {
  return 0;
}

TEST(KeyTable, CreatesOnceAndKeepsTheValue) {
  KeyTable<int> table(100, 4);
  int made = 0;
  auto make = [&] {
    ++made;
    return 0;
  };
  EXPECT_EQ(table.with("a", make, [](int& v) { return ++v; }), 1);
  EXPECT_EQ(table.with("a", make, [](int& v) { return ++v; }), 2);
  EXPECT_EQ(table.with("b", make, [](int& v) { return ++v; }), 1);
  EXPECT_EQ(made, 2);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_TRUE(table.erase("a"));
  EXPECT_FALSE(table.erase("a"));
  EXPECT_EQ(table.with("a", make, [](int& v) { return v; }), 0);
}

TEST(KeyTable, EvictsTheLeastRecentlyUsed) {
  KeyTable<int> table(3, 1);  // one shard, so the LRU order is global
  for (const char* k : {"a", "b", "c"})
    table.with(k, make_zero, [](int& v) { v = 7; });
  table.with("a", make_zero, [](int&) {});  // a is now the most recent; b the least
  table.with("d", make_zero, [](int&) {});
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.evictions(), 1u);
  EXPECT_EQ(table.with("a", make_zero, [](int& v) { return v; }), 7);
  EXPECT_EQ(table.with("c", make_zero, [](int& v) { return v; }), 7);
  EXPECT_EQ(table.with("b", make_zero, [](int& v) { return v; }), 0);  // recreated
}

TEST(KeyTable, BoundHoldsUnderAFloodOfDistinctKeys) {
  KeyTable<TokenBucket> table(1000, 16);
  const RateLimit limit{.rate_per_second = 1, .burst = 1};
  FakeClock clock;
  for (int i = 0; i < 100000; ++i) {
    table.with(
        "ip:" + std::to_string(i), [&] { return TokenBucket(limit); },
        [&](TokenBucket& b) { return b.try_acquire(clock.now()); });
    ASSERT_LE(table.size(), table.max_keys());
  }
  EXPECT_LE(table.max_keys(), 1000u);
  EXPECT_EQ(table.size() + table.evictions(), 100000u);
  EXPECT_GT(table.size(), 900u);  // shards fill evenly enough to use most of the budget
}

TEST(KeyTable, BoundHoldsWithConcurrentWriters) {
  KeyTable<int> table(256, 8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        table.with(std::to_string(t) + ":" + std::to_string(i), make_zero, [](int& v) { ++v; });
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_LE(table.size(), 256u);
  EXPECT_EQ(table.size() + table.evictions(), 80000u);
}

TEST(KeyTable, TinyBudgetStillWorks) {
  KeyTable<int> table(1, 16);
  table.with("a", make_zero, [](int&) {});
  table.with("b", make_zero, [](int&) {});
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.max_keys(), 1u);
}

}  // namespace
}  // namespace sluice::resilience
