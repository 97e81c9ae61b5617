// rate_limit — token-bucket limits per key (client IP, header, route, user, tier, or a
// combination), several per middleware, decided by a local backend or a quota shared through Redis.
// Rejections are 429 with Retry-After and the RateLimit-* headers of the IETF draft
// (draft-ietf-httpapi-ratelimit-headers-07); allowed responses carry the RateLimit-* headers too
// unless `headers: false`.
//
//   - type: rate_limit
//     limits:
//       - { name: per_ip, key: client_ip, rate: 10, burst: 20 }
//       - { name: global, key: route, rate: 1000, burst: 1000 }
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "middleware/common/request_key.hpp"
#include "resilience/rate_limiter_backend.hpp"
#include "sluice/exchange.hpp"

namespace sluice::observe {
class ShardedCounter;
}

namespace sluice::middleware {

struct LimitRule {
  std::string name;
  RequestKey key;
  resilience::RateLimit limit;
  std::string policy;  // "10;w=1;burst=20"
  // sluice_rate_limit_decisions_total{limiter="<middleware>/<limit>",result=...}; may be null.
  // Sharded per worker (rate_limit_stats.hpp): every request counts one.
  observe::ShardedCounter* allowed = nullptr;
  observe::ShardedCounter* denied = nullptr;
  observe::ShardedCounter* allowed_degraded = nullptr;
  observe::ShardedCounter* denied_degraded = nullptr;
};

struct RateLimitConfig {
  std::vector<LimitRule> limits;
  bool headers = true;           // RateLimit-* on allowed responses
  int fail_closed_status = 503;  // a denial by a degraded backend's fail_closed policy
};

class RateLimitMiddleware final : public Middleware {
 public:
  // `on_degraded` is called (on any thread) after a decision the backend took by its failure
  // policy; the Redis metrics use it. May be empty.
  RateLimitMiddleware(std::string name, RateLimitConfig config,
                      std::shared_ptr<resilience::RateLimiterBackend> backend,
                      std::function<void()> on_degraded = {});

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "rate_limit"; }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;

  const std::shared_ptr<resilience::RateLimiterBackend>& backend() const { return backend_; }

  // "10;w=1;burst=20": the draft's quota policy of a token bucket (w: seconds; a rate below
  // 1/s or fractional is given over the smallest whole window that makes the quota whole).
  static std::string policy_of(const resilience::RateLimit& limit);

 private:
  void count(const LimitRule& rule, const resilience::RateDecision& d) const;
  void reject(Exchange& ex, const resilience::RateDecision& d) const;
  Decision decide(Exchange& ex, const resilience::RateDecision& verdict) const;
  void set_headers(Exchange& ex, const resilience::RateDecision& d) const;

  std::string name_;
  RateLimitConfig config_;
  std::string policies_;  // every limit's policy, comma-separated
  std::function<void()> on_degraded_;
  // Last, so it is destroyed first: a backend answers its pending decisions when destroyed,
  // and those callbacks use the members above.
  std::shared_ptr<resilience::RateLimiterBackend> backend_;
};

}  // namespace sluice::middleware
