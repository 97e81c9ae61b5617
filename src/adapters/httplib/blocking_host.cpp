#include "adapters/httplib/blocking_host.hpp"

namespace sluice::httplib_adapter {

BlockingHost::BlockingHost() : exchange_(*this, Request(request_), Response(response_)) {}

void BlockingHost::post(std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  if (closed_) {
    // Destroyed outside the lock: it may hold a Resume whose destructor posts here again.
    auto dropped = std::move(fn);
    lock.unlock();
    return;
  }
  queue_.push_back(std::move(fn));
  // Notified under the lock: once it is released, the request's thread may run `fn`, finish
  // and destroy this host, so nothing here may touch `wake_` after the unlock (ThreadSanitizer
  // found notify_one() racing the destructor when a hook resumed from another thread).
  wake_.notify_one();
}

void BlockingHost::post_after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  if (closed_) {
    auto dropped = std::move(fn);
    lock.unlock();
    return;
  }
  timers_.emplace(Clock::now() + std::chrono::duration_cast<Clock::duration>(delay), std::move(fn));
  wake_.notify_one();  // under the lock, as in post()
}

void BlockingHost::run_until(const bool& done) {
  std::unique_lock lock(mutex_);
  while (!done) {
    const auto now = Clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      queue_.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
    if (queue_.empty()) {
      if (timers_.empty()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, timers_.begin()->first);
      }
      continue;
    }
    auto fn = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    fn();
    fn = nullptr;  // its captures (a Resume, the host) go before the lock is taken again
    lock.lock();
  }
}

void BlockingHost::close() {
  std::deque<std::function<void()>> queue;
  std::multimap<Clock::time_point, std::function<void()>> timers;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    queue.swap(queue_);
    timers.swap(timers_);
  }
}

}  // namespace sluice::httplib_adapter
