#include "resilience/response_cache.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace sluice::resilience {
namespace {

using std::chrono::seconds;

CachedEntry entry(SteadyTime at, std::string body, int status = 200) {
  return CachedEntry{status, {{"content-type", "text/plain"}}, std::move(body), at};
}

TEST(ResponseCache, ReturnsTheEntryAndItsAge) {
  FakeClock clock;
  ResponseCache cache(1 << 20, seconds(30));
  ASSERT_TRUE(cache.put("GET /a", entry(clock.now(), "hello", 201)));
  clock.advance(seconds(5));
  const auto hit = cache.get("GET /a", clock.now());
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->entry->status, 201);
  EXPECT_EQ(hit->entry->body, "hello");
  EXPECT_EQ(hit->entry->headers.at(0).first, "content-type");
  EXPECT_EQ(hit->age, seconds(5));
  EXPECT_FALSE(cache.get("GET /b", clock.now()).has_value());
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(ResponseCache, ExpiredEntriesAreNotReturned) {
  FakeClock clock;
  ResponseCache cache(1 << 20, seconds(30));
  cache.put("k", entry(clock.now(), "v"));
  cache.put("short", entry(clock.now(), "v"), seconds(1));
  clock.advance(seconds(1));
  EXPECT_FALSE(cache.get("short", clock.now()).has_value());
  clock.advance(seconds(28));
  EXPECT_TRUE(cache.get("k", clock.now()).has_value());
  clock.advance(seconds(1));
  EXPECT_FALSE(cache.get("k", clock.now()).has_value());
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(ResponseCache, EvictsLeastRecentlyUsedOverTheByteBudget) {
  FakeClock clock;
  const size_t one = ResponseCache::charge("k0", entry(clock.now(), std::string(1000, 'x')));
  ResponseCache cache(3 * one, seconds(30));
  for (int i = 0; i < 3; ++i) {
    cache.put("k" + std::to_string(i), entry(clock.now(), std::string(1000, 'x')));
  }
  EXPECT_EQ(cache.bytes(), 3 * one);
  ASSERT_TRUE(cache.get("k0", clock.now()));  // k1 is now the least recently used
  cache.put("k3", entry(clock.now(), std::string(1000, 'x')));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_FALSE(cache.get("k1", clock.now()).has_value());
  EXPECT_TRUE(cache.get("k0", clock.now()).has_value());
  EXPECT_LE(cache.bytes(), cache.max_bytes());
}

TEST(ResponseCache, ReplacingAKeyUpdatesBytes) {
  FakeClock clock;
  ResponseCache cache(1 << 20, seconds(30));
  cache.put("k", entry(clock.now(), std::string(500, 'a')));
  cache.put("k", entry(clock.now(), "b"));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), ResponseCache::charge("k", entry(clock.now(), "b")));
  EXPECT_EQ(cache.get("k", clock.now())->entry->body, "b");
}

TEST(ResponseCache, RefusesAnEntryBiggerThanTheBudget) {
  FakeClock clock;
  ResponseCache cache(1000, seconds(30));
  cache.put("small", entry(clock.now(), "s"));
  EXPECT_FALSE(cache.put("big", entry(clock.now(), std::string(2000, 'x'))));
  EXPECT_TRUE(cache.get("small", clock.now()).has_value());
}

TEST(ResponseCache, HitOutlivesEviction) {
  FakeClock clock;
  ResponseCache cache(1 << 20, seconds(30));
  cache.put("k", entry(clock.now(), "kept"));
  const auto hit = cache.get("k", clock.now());
  cache.clear();
  EXPECT_EQ(hit->entry->body, "kept");
  EXPECT_TRUE(cache.put("k2", entry(clock.now(), "x")));
  EXPECT_TRUE(cache.erase("k2"));
  EXPECT_FALSE(cache.erase("k2"));
}

TEST(ResponseCache, ConcurrentUseStaysWithinBudget) {
  FakeClock clock;
  ResponseCache cache(64 * 1024, seconds(30));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string key = "k" + std::to_string((i * 7 + t) % 200);
        if (i % 3 == 0) {
          cache.put(key, entry(clock.now(), std::string(size_t(100 + i % 900), 'x')));
        } else if (auto hit = cache.get(key, clock.now())) {
          EXPECT_EQ(hit->entry->status, 200);
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_LE(cache.bytes(), cache.max_bytes());
}

}  // namespace
}  // namespace sluice::resilience
