#include "resilience/concurrency_limiter.hpp"

#include <utility>
#include <vector>

namespace sluice::resilience {

ConcurrencyLimiter::ConcurrencyLimiter(uint32_t max_in_flight, size_t max_queue)
    : max_in_flight_(max_in_flight), max_queue_(max_queue) {}

ConcurrencyLimiter::~ConcurrencyLimiter() {
  std::map<WaitId, Waiter> left;
  {
    std::lock_guard lock(mu_);
    left.swap(waiters_);
  }
  for (auto& [id, waiter] : left)
    waiter(false);
}

bool ConcurrencyLimiter::take_slot() {
  uint32_t cur = in_flight_.load(std::memory_order_seq_cst);
  while (cur < max_in_flight_) {
    if (in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_seq_cst)) return true;
  }
  return false;
}

bool ConcurrencyLimiter::try_acquire() {
  if (queued_.load(std::memory_order_seq_cst) == 0 && take_slot()) return true;
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// release() writes in_flight_ then reads queued_; enqueue() writes queued_ then reads
// in_flight_ (in take_slot). Both seq_cst, so at least one of them sees the other and a
// waiter cannot be stranded next to a free slot.
void ConcurrencyLimiter::release() {
  in_flight_.fetch_sub(1, std::memory_order_seq_cst);
  if (queued_.load(std::memory_order_seq_cst) != 0) grant_waiters();
}

std::optional<ConcurrencyLimiter::WaitId> ConcurrencyLimiter::enqueue(Waiter on_ready) {
  WaitId id = 0;
  {
    std::lock_guard lock(mu_);
    if (waiters_.size() >= max_queue_) {
      queue_full_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    id = next_id_++;
    waiters_.emplace(id, std::move(on_ready));
    queued_.store(waiters_.size(), std::memory_order_seq_cst);
  }
  grant_waiters();
  return id;
}

bool ConcurrencyLimiter::cancel(WaitId id) {
  std::lock_guard lock(mu_);
  if (waiters_.erase(id) == 0) return false;
  queued_.store(waiters_.size(), std::memory_order_seq_cst);
  cancelled_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ConcurrencyLimiter::grant_waiters() {
  std::vector<Waiter> granted;
  {
    std::lock_guard lock(mu_);
    while (!waiters_.empty() && take_slot()) {
      granted.push_back(std::move(waiters_.begin()->second));
      waiters_.erase(waiters_.begin());
    }
    queued_.store(waiters_.size(), std::memory_order_seq_cst);
  }
  for (Waiter& w : granted)
    w(true);
}

}  // namespace sluice::resilience
