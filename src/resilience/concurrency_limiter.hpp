// ConcurrencyLimiter — a bulkhead: at most max_in_flight holders at once, plus an optional
// bounded FIFO of waiters that are handed a slot as holders release theirs.
//
//   ConcurrencyLimiter limiter(/*max_in_flight=*/64, /*max_queue=*/128);
//   if (limiter.try_acquire()) { serve(); limiter.release(); }
//   else if (auto id = limiter.enqueue([](bool granted) { resume(granted); })) arm_timeout(*id);
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

namespace sluice::resilience {

class ConcurrencyLimiter {
 public:
  using WaitId = uint64_t;
  // Called once: granted=true means the waiter now holds a slot and must release() it;
  // granted=false only when the limiter is destroyed with the waiter still queued.
  using Waiter = std::function<void(bool granted)>;

  // max_queue = 0 disables waiting: enqueue() always refuses.
  explicit ConcurrencyLimiter(uint32_t max_in_flight, size_t max_queue = 0);
  // Denies every waiter still queued.
  ~ConcurrencyLimiter();

  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  // Takes a slot when one is free and nobody is queued (waiters are not overtaken).
  // Lock-free; a refusal counts in rejected().
  bool try_acquire();

  // Gives a slot back; the oldest waiter, if any, gets it (its callback runs here, on the
  // releasing thread, outside the limiter's lock).
  void release();

  // Queues a waiter; nullopt when the queue is full (counts in queue_full()). If a slot is
  // free already the waiter is granted before enqueue() returns (and the id is returned).
  std::optional<WaitId> enqueue(Waiter on_ready);

  // Removes a waiter that has not been granted (the caller timed out); true when removed,
  // and then its callback is never called. False when it was granted already or is unknown.
  bool cancel(WaitId id);

  uint32_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  size_t queued() const { return queued_.load(std::memory_order_relaxed); }
  uint32_t max_in_flight() const { return max_in_flight_; }
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  uint64_t queue_full() const { return queue_full_.load(std::memory_order_relaxed); }
  uint64_t cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  bool take_slot();
  // Hands free slots to the oldest waiters; callbacks run after the lock is dropped.
  void grant_waiters();

  const uint32_t max_in_flight_;
  const size_t max_queue_;
  std::atomic<uint32_t> in_flight_{0};
  std::atomic<size_t> queued_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> queue_full_{0};
  std::atomic<uint64_t> cancelled_{0};

  std::mutex mu_;
  WaitId next_id_ = 1;
  std::map<WaitId, Waiter> waiters_;  // ids grow, so map order is FIFO order
};

}  // namespace sluice::resilience
