// concurrency_limit — at most max_in_flight requests at once per route (or per key, or per
// shared group of routes), an optional bounded wait queue with a maximum wait, and 503 (or 429)
// with detail "concurrency_limited" when full. The slot is released in post_handle, so a
// request that was answered early, failed or was cancelled gives it back too.
//
//   - type: concurrency_limit
//     max_in_flight: 64
//     max_queue: 128           # 0: no waiting
//     max_wait_ms: 100
//     reject_status: 503       # or 429
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "middleware/common/request_key.hpp"
#include "middleware/concurrency_limit/concurrency_limit_stats.hpp"
#include "resilience/concurrency_limiter.hpp"
#include "sluice/exchange.hpp"

namespace sluice::middleware {

struct ConcurrencyLimitConfig {
  uint32_t max_in_flight = 64;
  size_t max_queue = 0;
  std::chrono::milliseconds max_wait{100};
  int reject_status = 503;
  bool keyed = false;  // one limiter per key value instead of one for the middleware
  RequestKey key;
  size_t max_keys = 10000;
};

class ConcurrencyLimitMiddleware final : public Middleware {
 public:
  // `shared` is the limiter to use when not keyed (a group's or this middleware's own).
  ConcurrencyLimitMiddleware(std::string name, ConcurrencyLimitConfig config,
                             std::shared_ptr<resilience::ConcurrencyLimiter> shared,
                             ConcurrencyLimitStats metrics);

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "concurrency_limit"; }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;

  size_t keys() const;

 private:
  std::shared_ptr<resilience::ConcurrencyLimiter> limiter_for(const Exchange& ex);
  Decision reject(Exchange& ex, prometheus::Counter* counter, std::string_view why);

  std::string name_;
  ConcurrencyLimitConfig config_;
  std::shared_ptr<resilience::ConcurrencyLimiter> shared_;
  ConcurrencyLimitStats metrics_;
  mutable std::mutex keys_mutex_;
  std::unordered_map<std::string, std::shared_ptr<resilience::ConcurrencyLimiter>> by_key_;
};

}  // namespace sluice::middleware
