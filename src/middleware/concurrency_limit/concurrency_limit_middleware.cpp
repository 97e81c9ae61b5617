#include "middleware/concurrency_limit/concurrency_limit_middleware.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "sluice/instance_state.hpp"

namespace sluice::middleware {

using resilience::ConcurrencyLimiter;

namespace {

// A request in the wait queue. Whoever removes it from the queue with cancel() (the timeout or
// the client going away, both on the request's worker) owns the outcome; otherwise the
// limiter granted it a slot, from whichever thread released one.
struct Waiting {
  Resume resume;
  ConcurrencyLimiter::WaitId id = 0;
  bool without_slot = false;  // worker thread only: left the queue without a slot
};

struct ConcurrencyCall {
  std::shared_ptr<ConcurrencyLimiter> limiter;
  bool holds = false;  // took a slot at once
  std::shared_ptr<Waiting> waiting;
};

}  // namespace

ConcurrencyLimitMiddleware::ConcurrencyLimitMiddleware(std::string name,
                                                       ConcurrencyLimitConfig config,
                                                       std::shared_ptr<ConcurrencyLimiter> shared,
                                                       ConcurrencyLimitStats metrics)
    : name_(std::move(name)),
      config_(std::move(config)),
      shared_(std::move(shared)),
      metrics_(metrics) {}

size_t ConcurrencyLimitMiddleware::keys() const {
  std::lock_guard lock(keys_mutex_);
  return by_key_.size();
}

// Keyed limiters are created on demand; past max_keys an idle one (nobody holds or waits) makes
// room, and when none is idle the request is refused rather than memory grown.
std::shared_ptr<ConcurrencyLimiter> ConcurrencyLimitMiddleware::limiter_for(const Exchange& ex) {
  if (!config_.keyed) return shared_;
  std::string key = config_.key.of(ex);
  std::lock_guard lock(keys_mutex_);
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  if (by_key_.size() >= config_.max_keys) {
    for (auto it = by_key_.begin(); it != by_key_.end(); ++it) {
      if (it->second.use_count() == 1 && it->second->in_flight() == 0 &&
          it->second->queued() == 0) {
        by_key_.erase(it);
        break;
      }
    }
    if (by_key_.size() >= config_.max_keys) return nullptr;
  }
  auto limiter = std::make_shared<ConcurrencyLimiter>(config_.max_in_flight, config_.max_queue);
  by_key_.emplace(std::move(key), limiter);
  return limiter;
}

Decision ConcurrencyLimitMiddleware::reject(Exchange& ex, prometheus::Counter* counter,
                                            std::string_view why) {
  if (counter != nullptr) counter->Increment();
  return ex.answer_error(config_.reject_status, "concurrency_limited",
                         std::string("too many requests in flight: ") + std::string(why));
}

Decision ConcurrencyLimitMiddleware::pre_handle(Exchange& ex) {
  auto limiter = limiter_for(ex);
  if (!limiter) return reject(ex, metrics_.rejected_full, "no free limiter key");
  if (limiter->try_acquire()) {
    if (metrics_.in_flight != nullptr) metrics_.in_flight->Increment();
    auto& call = InstanceState<ConcurrencyCall>::emplace(ex.context(), this);
    call.limiter = std::move(limiter);
    call.holds = true;
    return Decision::next();
  }
  if (config_.max_queue == 0) return reject(ex, metrics_.rejected_full, "limit reached");
  auto w = std::make_shared<Waiting>();
  w->resume = ex.defer();
  prometheus::Gauge* gauge = metrics_.in_flight;
  auto id = limiter->enqueue([this, w, gauge](bool granted) {
    if (granted) {
      if (gauge != nullptr) gauge->Increment();
      w->resume(Decision::next());
      return;
    }
    w->resume.with([this, w](Exchange& ex) {  // the limiter went away with the request queued
      w->without_slot = true;
      return reject(ex, metrics_.rejected_full, "the limiter was shut down");
    });
  });
  if (!id) {
    // The returned decision wins over the defer(); the unused Resume is dropped as stale.
    return reject(ex, metrics_.rejected_queue_full, "limit reached and the queue is full");
  }
  w->id = *id;
  auto& call = InstanceState<ConcurrencyCall>::emplace(ex.context(), this);
  call.limiter = limiter;
  call.waiting = w;
  ex.post_after(config_.max_wait, [this, w, limiter] {
    if (!limiter->cancel(w->id)) return;  // granted meanwhile
    w->without_slot = true;
    w->resume.with([this](Exchange& ex) {
      return reject(ex, metrics_.rejected_timeout,
                    "waited " + std::to_string(config_.max_wait.count()) + " ms for a slot");
    });
  });
  ex.on_cancel([w, limiter] {
    if (!limiter->cancel(w->id)) return;  // granted: post_handle gives the slot back
    w->without_slot = true;
    // Nobody will call this Resume now. It holds the request's host, which holds the Context
    // that holds `w`: drop it (its post is stale) or the connection would never be freed.
    Resume stale = std::move(w->resume);
  });
  return Decision::wait();
}

void ConcurrencyLimitMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  auto* call = InstanceState<ConcurrencyCall>::find(ex.context(), this);
  if (call == nullptr || !call->limiter) return;
  auto limiter = std::move(call->limiter);
  call->limiter.reset();
  if (auto waiting = std::move(call->waiting); waiting && waiting->without_slot) return;
  limiter->release();
  if (metrics_.in_flight != nullptr) metrics_.in_flight->Decrement();
}

}  // namespace sluice::middleware
