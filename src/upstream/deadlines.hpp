// Deadlines — the upstream calls' deadlines of one io_context (one worker), on one Asio timer.
//
// Every proxied request waits for its upstream under a deadline, and nearly every one is answered
// long before it: an Asio timer per request was armed, cancelled, and its cancelled wait then
// completed through the scheduler (≈ 700 instructions and two of Asio's lock pairs a request,
// callgrind, bench/load/proxy_full.yaml). Here a deadline is an entry in a list sorted by time,
// intrusive (no allocation): adding one is a few pointer writes (the new deadline is nearly
// always the latest, so the scan from the tail stops at once), removing one is an unlink. One
// steady_timer per io_context is armed for the earliest; it is moved only when an earlier one
// comes. A removed first entry leaves the timer where it was: it then fires once for nothing and
// is set for the next (with deadlines seconds away, one spare wake-up every few seconds).
// Entries due are fired in deadline order, each after it left the list (so it may add itself
// again). Single-threaded: the io_context's own thread adds, removes and fires.
//
//   Deadlines& d = Deadlines::of(io);
//   d.add(entry, steady_now() + 5s);   // entry.fire(entry) runs at that time...
//   d.remove(entry);                   // ...unless removed first (a no-op when not in the list)
#pragma once

#include <atomic>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>

#include "core/steady_now.hpp"
#include "sluice/clock.hpp"

namespace sluice::upstream {

class Deadlines final : public boost::asio::execution_context::service {
 public:
  struct Entry {
    SteadyTime at{};
    Entry* prev = nullptr;
    Entry* next = nullptr;
    bool linked = false;
    void* owner = nullptr;           // for fire
    void (*fire)(Entry&) = nullptr;  // runs on the io_context's thread, the entry out of the list
    // At the io_context's end, for an entry still in the list (out of it by then): what Asio
    // does to a pending wait's handler, destroying it, so an owner held by its entry is let go.
    void (*drop)(Entry&) = nullptr;
  };

  using key_type = Deadlines;
  static inline boost::asio::execution_context::id id;

  // The io_context's instance (made on first use). Asio's lookup takes a lock and a search; the
  // last one is kept per thread, and dropped when any io_context with a list ends (a new
  // io_context may then live at the address of the old one).
  static Deadlines& of(boost::asio::io_context& io) {
    thread_local boost::asio::io_context* cached_io = nullptr;
    thread_local Deadlines* cached = nullptr;
    thread_local std::uint64_t cached_epoch = 0;
    const std::uint64_t epoch = epoch_.load(std::memory_order_acquire);
    if (cached_io != &io || cached_epoch != epoch) {
      cached = &boost::asio::use_service<Deadlines>(io);
      cached_io = &io;
      cached_epoch = epoch;
    }
    return *cached;
  }

  explicit Deadlines(boost::asio::execution_context& context)
      : service(context), timer_(static_cast<boost::asio::io_context&>(context)) {}

  void add(Entry& e, SteadyTime at) {
    remove(e);
    e.at = at;
    e.linked = true;
    Entry* after = tail_;  // the last entry due no later than `at` (equal ones keep their order)
    while (after != nullptr && after->at > at)
      after = after->prev;
    e.prev = after;
    e.next = after != nullptr ? after->next : head_;
    (e.prev != nullptr ? e.prev->next : head_) = &e;
    (e.next != nullptr ? e.next->prev : tail_) = &e;
    if (head_ == &e && (!armed_ || at < armed_at_)) arm(at);
  }

  void remove(Entry& e) {
    if (!e.linked) return;
    (e.prev != nullptr ? e.prev->next : head_) = e.next;
    (e.next != nullptr ? e.next->prev : tail_) = e.prev;
    e.prev = e.next = nullptr;
    e.linked = false;
  }

  bool empty() const { return head_ == nullptr; }
  // Asio timer settings so far (arms, not fires): tests check that it is not moved per entry.
  std::uint64_t arms() const { return arms_; }

 private:
  void shutdown() override {  // before the io_context destroys its handlers (and the calls)
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    while (head_ != nullptr) {
      Entry& e = *head_;
      remove(e);
      if (e.drop != nullptr) e.drop(e);  // may end the owner, and the entry with it
    }
    armed_ = false;
    ++generation_;
  }

  void arm(SteadyTime at) {
    armed_ = true;
    armed_at_ = at;
    ++arms_;
    timer_.expires_at(at);  // a wait still pending completes as aborted: its generation is old
    timer_.async_wait([this, generation = ++generation_](const boost::system::error_code&) {
      if (generation == generation_) on_timer();
    });
  }

  void on_timer() {
    armed_ = false;
    const SteadyTime now = detail::steady_now();
    while (head_ != nullptr && head_->at <= now) {
      Entry& e = *head_;
      remove(e);
      e.fire(e);  // may add entries (this one again), which may arm the timer
    }
    if (head_ != nullptr && (!armed_ || head_->at < armed_at_)) arm(head_->at);
  }

  boost::asio::steady_timer timer_;
  Entry* head_ = nullptr;
  Entry* tail_ = nullptr;
  bool armed_ = false;
  SteadyTime armed_at_{};
  std::uint64_t generation_ = 0;
  std::uint64_t arms_ = 0;
  static inline std::atomic<std::uint64_t> epoch_{1};  // io_contexts with a list ended so far + 1
};

}  // namespace sluice::upstream
