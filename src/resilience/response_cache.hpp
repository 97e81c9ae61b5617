// ResponseCache — a thread-safe TTL cache of whole responses under a byte budget, evicting the
// least recently used entries when over it (the "cache snapshot" a fallback answers from).
//
//   ResponseCache cache(/*max_bytes=*/64 << 20, /*ttl=*/std::chrono::seconds(30));
//   cache.put("GET /price", {.status = 200, .headers = h, .body = b, .stored_at = clock.now()});
//   if (auto hit = cache.get("GET /price", clock.now())) reply(*hit->entry, hit->age);
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/clock.hpp"

namespace sluice::resilience {

struct CachedEntry {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  SteadyTime stored_at{};  // the age and the expiry count from here
};

struct CacheHit {
  std::shared_ptr<const CachedEntry> entry;  // shared, immutable: no copy of the body
  Nanos age{0};
};

class ResponseCache {
 public:
  ResponseCache(size_t max_bytes, Nanos ttl);

  // Stores (or replaces) key's entry, expiring at stored_at + ttl (the cache's default TTL
  // when none is given). False when the entry alone is bigger than the whole budget.
  bool put(std::string key, CachedEntry entry, std::optional<Nanos> ttl = std::nullopt);

  // The entry and its age at `now`; nullopt when absent or expired (expired ones are dropped).
  std::optional<CacheHit> get(std::string_view key, SteadyTime now);

  bool erase(std::string_view key);
  void clear();

  size_t size() const;
  size_t bytes() const;
  size_t max_bytes() const { return max_bytes_; }
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }

  // What an entry is charged against the budget: its strings plus a fixed overhead.
  static size_t charge(std::string_view key, const CachedEntry& entry);

 private:
  struct Node {
    std::string key;
    std::shared_ptr<const CachedEntry> entry;
    SteadyTime expires_at;
    size_t charge;
  };
  using List = std::list<Node>;

  void remove_locked(List::iterator it);

  const size_t max_bytes_;
  const Nanos ttl_;
  mutable std::mutex mu_;
  List lru_;  // most recently used first
  std::unordered_map<std::string_view, List::iterator> index_;
  size_t bytes_ = 0;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace sluice::resilience
