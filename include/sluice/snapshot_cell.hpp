// sluice::SnapshotCell<T> — publishes immutable snapshots to many threads; readers take one
// without a lock and without writing a reference count shared with other threads.
//
//   SnapshotCell<Table> cell(std::make_shared<const Table>(...));
//   { auto lease = cell.acquire(); lease->lookup(...); }   // request path
//   cell.publish(std::make_shared<const Table>(...));      // control plane
//
// How: each reader thread keeps its own copy of the current shared_ptr in a per-thread slot,
// refreshed only when the cell's version changes (one shared_ptr copy per thread per publish,
// not per request). A lease counts in-flight users in that thread's slot with plain integers;
// a snapshot replaced while leases on it are still alive is parked in the slot's retired list
// and dropped by the last lease on that thread. A request therefore finishes on the snapshot it
// started on, and an old snapshot is destroyed after its last request. A lease must be released
// on the thread that acquired it (sluice resumes a request on its own worker, so it is).
// Threads beyond kMaxThreads fall back to a plain shared_ptr copy.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace sluice {

namespace detail {
// A small process-wide index per thread, assigned on first use.
int snapshot_thread_index();
inline constexpr int kSnapshotMaxThreads = 128;
}  // namespace detail

template <class T>
class SnapshotCell {
  struct Retired {
    std::shared_ptr<const T> snapshot;
    std::uint64_t in_flight;
  };
  struct alignas(64) ThreadSlot {
    std::uint64_t version = 0;
    std::shared_ptr<const T> current;
    std::uint64_t in_flight = 0;
    std::vector<Retired> retired;
  };

 public:
  class Lease {
   public:
    Lease() = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease(Lease&& o) noexcept
        : ptr_(std::exchange(o.ptr_, nullptr)),
          slot_(std::exchange(o.slot_, nullptr)),
          owned_(std::move(o.owned_)) {}
    Lease& operator=(Lease&& o) noexcept {
      if (this != &o) {
        release();
        ptr_ = std::exchange(o.ptr_, nullptr);
        slot_ = std::exchange(o.slot_, nullptr);
        owned_ = std::move(o.owned_);
      }
      return *this;
    }
    ~Lease() { release(); }

    const T* get() const { return ptr_; }
    const T* operator->() const { return ptr_; }
    const T& operator*() const { return *ptr_; }
    explicit operator bool() const { return ptr_ != nullptr; }

    void release() {
      if (slot_ != nullptr) {
        if (slot_->current.get() == ptr_) {
          --slot_->in_flight;
        } else {
          for (auto it = slot_->retired.begin(); it != slot_->retired.end(); ++it) {
            if (it->snapshot.get() == ptr_) {
              if (--it->in_flight == 0) slot_->retired.erase(it);
              break;
            }
          }
        }
        slot_ = nullptr;
      }
      owned_.reset();
      ptr_ = nullptr;
    }

   private:
    friend class SnapshotCell;
    const T* ptr_ = nullptr;
    ThreadSlot* slot_ = nullptr;
    std::shared_ptr<const T> owned_;  // only on the fallback path
  };

  explicit SnapshotCell(std::shared_ptr<const T> initial)
      : slots_(new ThreadSlot[detail::kSnapshotMaxThreads]), current_(std::move(initial)) {}
  SnapshotCell(const SnapshotCell&) = delete;
  SnapshotCell& operator=(const SnapshotCell&) = delete;

  // Replaces the current snapshot. Readers see it on their next acquire().
  void publish(std::shared_ptr<const T> next) {
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
    version_.fetch_add(1, std::memory_order_release);
  }

  // The current snapshot as a shared_ptr: for the control plane, not the request path.
  std::shared_ptr<const T> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

  Lease acquire() const {
    Lease lease;
    const int index = detail::snapshot_thread_index();
    if (index >= detail::kSnapshotMaxThreads) {
      lease.owned_ = current();
      lease.ptr_ = lease.owned_.get();
      return lease;
    }
    ThreadSlot& slot = slots_[index];
    const std::uint64_t version = version_.load(std::memory_order_acquire);
    if (slot.version != version || !slot.current) refresh(slot);
    ++slot.in_flight;
    lease.ptr_ = slot.current.get();
    lease.slot_ = &slot;
    return lease;
  }

 private:
  void refresh(ThreadSlot& slot) const {
    if (slot.current && slot.in_flight > 0) {
      slot.retired.push_back(Retired{std::move(slot.current), slot.in_flight});
    }
    std::lock_guard lock(mutex_);
    slot.current = current_;
    slot.version = version_.load(std::memory_order_relaxed);
    slot.in_flight = 0;
  }

  std::unique_ptr<ThreadSlot[]> slots_;
  mutable std::mutex mutex_;
  std::shared_ptr<const T> current_;
  std::atomic<std::uint64_t> version_{1};
};

}  // namespace sluice
