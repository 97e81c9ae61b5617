// RetryBudget — Envoy's retry budget: a retry may start only while the retries in flight stay
// below max(min_concurrency, percent × requests in flight), so retries cannot multiply the load
// on a cluster that is already failing. Shared by all workers: the requests in flight are
// counted per worker (observe::ShardedGauge, one cache line per worker, written per request by
// its own worker only) and summed when a retry asks; the retries in flight, written only by
// retries, are one atomic.
//
//   RetryBudget budget(20.0, 3);
//   budget.request_started();
//   if (budget.try_start_retry()) { ...; budget.retry_finished(); }
//   budget.request_finished();
#pragma once

#include <algorithm>
#include <atomic>

#include "observe/metrics/sharded.hpp"

namespace sluice::upstream {

class RetryBudget {
 public:
  RetryBudget(double percent, int min_concurrency)
      : percent_(percent), min_concurrency_(min_concurrency) {}

  void request_started() { requests_.add(1); }
  void request_finished() { requests_.add(-1); }
  // True (and counted) when one more retry fits the budget.
  bool try_start_retry() {
    const int limit = this->limit();
    int current = retries_.load(std::memory_order_relaxed);
    while (current < limit) {
      if (retries_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed))
        return true;
    }
    return false;
  }
  void retry_finished() { retries_.fetch_sub(1, std::memory_order_relaxed); }

  int limit() const {
    const double share = percent_ / 100.0 * static_cast<double>(requests_.value());
    return std::max(min_concurrency_, static_cast<int>(share));
  }
  int active_requests() const { return static_cast<int>(requests_.value()); }
  int active_retries() const { return retries_.load(std::memory_order_relaxed); }

 private:
  double percent_;
  int min_concurrency_;
  observe::ShardedGauge requests_;  // a request may finish on another shard: summed, not per shard
  std::atomic<int> retries_{0};
};

}  // namespace sluice::upstream
