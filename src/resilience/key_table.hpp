// KeyTable<V> — a bounded, sharded map from key strings to values (token buckets, usually).
// Each shard keeps its entries in least-recently-used order and evicts the idlest one when
// full, so a flood of distinct keys costs bounded memory instead of exhausting it.
//
//   KeyTable<TokenBucket> table(/*max_keys=*/100000);
//   auto d = table.with("ip:10.0.0.1", [&] { return TokenBucket(limit); },
//                       [&](TokenBucket& b) { return b.try_acquire(now); });
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace sluice::resilience {

namespace key_table_detail {
// The shard count actually used: a power of two, at most `requested`, at most max_keys.
size_t effective_shards(size_t max_keys, size_t requested);
// A hash independent from the one unordered_map uses inside the shard.
size_t shard_hash(std::string_view key);
}  // namespace key_table_detail

template <class V>
class KeyTable {
 public:
  // At most max_keys values live at once (each shard holds max_keys / shards). max_keys >= 1.
  explicit KeyTable(size_t max_keys, size_t shards = 16)
      : shard_count_(key_table_detail::effective_shards(max_keys, shards)),
        per_shard_(std::max<size_t>(1, max_keys / shard_count_)),
        shards_(std::make_unique<Shard[]>(shard_count_)) {}

  // Runs fn(V&) on key's value under the shard lock, first creating it with make() (which
  // returns a V) when absent; returns what fn returns. The entry becomes the most recently
  // used; creating one in a full shard evicts that shard's least recently used entry.
  // fn and make must not call back into the table.
  template <class Make, class Fn>
  decltype(auto) with(std::string_view key, Make&& make, Fn&& fn) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    if (auto it = shard.index.find(key); it != shard.index.end()) {
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      return fn(it->second->value);
    }
    if (shard.index.size() >= per_shard_) {
      shard.index.erase(std::string_view(shard.lru.back().key));
      shard.lru.pop_back();
      size_.fetch_sub(1, std::memory_order_relaxed);
      evictions_.fetch_add(1, std::memory_order_relaxed);
    }
    shard.lru.emplace_front(key, make);
    shard.index.emplace(std::string_view(shard.lru.front().key), shard.lru.begin());
    size_.fetch_add(1, std::memory_order_relaxed);
    return fn(shard.lru.front().value);
  }

  bool erase(std::string_view key) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.index.find(key);
    if (it == shard.index.end()) return false;
    auto node = it->second;
    shard.index.erase(it);
    shard.lru.erase(node);
    size_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }

  size_t size() const { return size_.load(std::memory_order_relaxed); }
  size_t max_keys() const { return per_shard_ * shard_count_; }
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    template <class Make>
    Entry(std::string_view k, Make& make) : key(k), value(make()) {}
    std::string key;
    V value;
  };
  struct Shard {
    std::mutex mu;
    std::list<Entry> lru;  // most recently used first; nodes never move, so keys stay put
    std::unordered_map<std::string_view, typename std::list<Entry>::iterator> index;
  };

  Shard& shard_for(std::string_view key) {
    return shards_[key_table_detail::shard_hash(key) & (shard_count_ - 1)];
  }

  const size_t shard_count_;
  const size_t per_shard_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<size_t> size_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace sluice::resilience
