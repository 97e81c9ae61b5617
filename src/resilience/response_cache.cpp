#include "resilience/response_cache.hpp"

namespace sluice::resilience {
namespace {
// Roughly the list node, the index slot and the shared control block of one entry.
constexpr size_t kEntryOverhead = 160;
}  // namespace

ResponseCache::ResponseCache(size_t max_bytes, Nanos ttl) : max_bytes_(max_bytes), ttl_(ttl) {}

size_t ResponseCache::charge(std::string_view key, const CachedEntry& entry) {
  size_t n = kEntryOverhead + key.size() + entry.body.size();
  for (const auto& [name, value] : entry.headers)
    n += name.size() + value.size() + 64;
  return n;
}

void ResponseCache::remove_locked(List::iterator it) {
  bytes_ -= it->charge;
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

bool ResponseCache::put(std::string key, CachedEntry entry, std::optional<Nanos> ttl) {
  const size_t cost = charge(key, entry);
  if (cost > max_bytes_) return false;
  const SteadyTime expires_at = entry.stored_at + ttl.value_or(ttl_);
  auto shared = std::make_shared<const CachedEntry>(std::move(entry));
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) remove_locked(it->second);
  while (bytes_ + cost > max_bytes_ && !lru_.empty()) {
    remove_locked(std::prev(lru_.end()));
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  lru_.push_front(Node{std::move(key), std::move(shared), expires_at, cost});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += cost;
  return true;
}

std::optional<CacheHit> ResponseCache::get(std::string_view key, SteadyTime now) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  List::iterator node = it->second;
  if (now >= node->expires_at) {
    remove_locked(node);
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, node);
  hits_.fetch_add(1, std::memory_order_relaxed);
  return CacheHit{node->entry, now - node->entry->stored_at};
}

bool ResponseCache::erase(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  remove_locked(it->second);
  return true;
}

void ResponseCache::clear() {
  std::lock_guard lock(mu_);
  index_.clear();
  lru_.clear();
  bytes_ = 0;
}

size_t ResponseCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

size_t ResponseCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace sluice::resilience
