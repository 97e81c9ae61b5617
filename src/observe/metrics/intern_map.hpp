// InternMap: a string-keyed map for metric series that request threads look up without a lock.
// Entries are created once under a mutex and live as long as the map (Prometheus series never
// disappear either); the capacity is fixed, which also bounds label cardinality.
//
//   InternMap<ShardedCounter> per_route(256);
//   if (ShardedCounter* c = per_route.get_or_create("api")) c->add();   // nullptr when full
//   per_route.for_each([](std::string_view key, const ShardedCounter& c) { ... });
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::observe {

template <class V>
class InternMap {
 public:
  explicit InternMap(std::size_t capacity)
      : mask_(std::bit_ceil(capacity * 2) - 1),
        slots_(std::make_unique<std::atomic<Node*>[]>(mask_ + 1)),
        limit_(capacity) {}
  ~InternMap() {
    for (std::size_t i = 0; i <= mask_; ++i)
      delete slots_[i].load(std::memory_order_relaxed);
  }
  InternMap(const InternMap&) = delete;
  InternMap& operator=(const InternMap&) = delete;

  V* find(std::string_view key) const {
    for (std::size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      Node* n = slots_[i].load(std::memory_order_acquire);
      if (n == nullptr) return nullptr;
      if (n->key == key) return &n->value;
    }
  }

  // `make` builds the value when the key is new; nullptr when the map is full.
  template <class Make>
  V* get_or_create(std::string_view key, Make&& make) {
    if (V* v = find(key)) return v;
    std::lock_guard lock(mutex_);
    if (V* v = find(key)) return v;
    if (size_ >= limit_) return nullptr;
    std::size_t i = hash(key) & mask_;
    while (slots_[i].load(std::memory_order_relaxed) != nullptr)
      i = (i + 1) & mask_;
    Node* n = new Node{std::string(key), make()};
    slots_[i].store(n, std::memory_order_release);
    ++size_;
    return &n->value;
  }
  V* get_or_create(std::string_view key) {
    return get_or_create(key, [] { return V(); });
  }

  // Visits every entry (in no particular order); safe while others insert.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i <= mask_; ++i) {
      if (const Node* n = slots_[i].load(std::memory_order_acquire)) fn(n->key, n->value);
    }
  }

 private:
  struct Node {
    std::string key;
    V value;
  };
  static std::size_t hash(std::string_view key) { return std::hash<std::string_view>{}(key); }

  const std::size_t mask_;
  std::unique_ptr<std::atomic<Node*>[]> slots_;
  const std::size_t limit_;
  std::mutex mutex_;
  std::size_t size_ = 0;  // guarded by mutex_
};

}  // namespace sluice::observe
