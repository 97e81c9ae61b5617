// The ids of a Redis-backed queue: a partition's stream id ("<ms>-<seq>") as the queue's u64 id
// (the replayer orders by it), back, and as the label the client sees; the partition of an order
// key, which every instance must compute alike.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "queue/redis_stream_storage.hpp"

namespace sluice::queue {
namespace {

using S = RedisStreamStorage;

TEST(RedisStreamIds, AStreamIdComesBackWithItsPartition) {
  for (int p : {0, 1, 7, 63}) {
    const std::uint64_t id = S::to_id("1765000000123-42", p);
    EXPECT_EQ(S::to_stream_id(id), "1765000000123-42");
    EXPECT_EQ(S::partition_of(id), p);
    EXPECT_EQ(S::label_of(id), "1765000000123-42@" + std::to_string(p));
  }
}

TEST(RedisStreamIds, IdsFollowTheStreamsOrderWithinAPartitionAndDifferAcrossPartitions) {
  EXPECT_LT(S::to_id("1765000000123-0", 3), S::to_id("1765000000123-1", 3));
  EXPECT_LT(S::to_id("1765000000123-131071", 3), S::to_id("1765000000124-0", 3));
  EXPECT_LT(S::to_id("1765000000123-5", 3), S::to_id("1766000000000-0", 3));
  std::set<std::uint64_t> ids;
  for (int p = 0; p < 64; ++p)
    ids.insert(S::to_id("1765000000123-0", p));
  EXPECT_EQ(ids.size(), 64u) << "the same stream id in two partitions is two records";
  // Far above any id of the local spill (a segment log counts from 1) from 2024-01-01 + 3 min on.
  EXPECT_GT(S::to_id("1704067400000-0", 0), std::uint64_t{1} << 40);
}

TEST(RedisStreamIds, TheSameKeyHasTheSamePartitionEverywhereAndKeysSpread) {
  // FNV-1a 64 of "acct-1" mod 8, computed independently: stable across builds and instances.
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : std::string("acct-1")) {
    h ^= c;
    h *= 1099511628211ull;
  }
  EXPECT_EQ(S::partition_for("acct-1", 8), static_cast<int>(h % 8));
  EXPECT_EQ(S::partition_for("acct-1", 1), 0);
  std::set<int> used;
  for (int i = 0; i < 200; ++i) {
    const int p = S::partition_for("key-" + std::to_string(i), 8);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, 8);
    used.insert(p);
  }
  EXPECT_EQ(used.size(), 8u);
}

}  // namespace
}  // namespace sluice::queue
