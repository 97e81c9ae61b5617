#include "middleware/rate_limit/rate_limit_middleware.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>

#include "observe/metrics/sharded.hpp"
#include "sluice/instance_state.hpp"

namespace sluice::middleware {

using resilience::RateDecision;
using resilience::RateLimit;

namespace {

// Decisions still coming from an asynchronous backend (from any thread). The last one to
// arrive resumes the request with the verdict, which is then answered or recorded on the
// request's worker.
struct Pending {
  explicit Pending(std::size_t n) : decisions(n) {}
  std::vector<std::optional<RateDecision>> decisions;
  std::atomic<int> remaining{0};
  Resume resume;
};

// What post_handle reports in the RateLimit-* headers of an allowed request.
struct RateCall {
  bool has_report = false;
  RateDecision report;
};

// The decision the headers describe: the denying one that waits longest, or, when every limit
// allowed, the one with the fewest tokens left.
RateDecision pick(const std::vector<std::optional<RateDecision>>& all) {
  const RateDecision* best = nullptr;
  for (const auto& d : all) {
    if (!d) continue;
    if (best == nullptr) {
      best = &*d;
    } else if (!d->allowed && (best->allowed || d->retry_after > best->retry_after)) {
      best = &*d;
    } else if (d->allowed && best->allowed && d->remaining < best->remaining) {
      best = &*d;
    }
  }
  return best != nullptr ? *best : RateDecision{.allowed = true};
}

std::string number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  std::string s = buf;
  while (s.back() == '0')
    s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

long long ceil_seconds(std::chrono::nanoseconds d) {
  if (d <= std::chrono::nanoseconds::zero()) return 0;
  if (d >= std::chrono::hours(24 * 365)) return 24LL * 365 * 3600;
  return static_cast<long long>(std::ceil(std::chrono::duration<double>(d).count()));
}

}  // namespace

std::string RateLimitMiddleware::policy_of(const RateLimit& limit) {
  long long window = 1;
  double quota = limit.rate_per_second;
  for (long long w = 1; w <= 3600; ++w) {
    const double q = limit.rate_per_second * static_cast<double>(w);
    if (std::fabs(q - std::round(q)) < 1e-9 && std::round(q) >= 1) {
      window = w;
      quota = std::round(q);
      break;
    }
  }
  return number(quota) + ";w=" + std::to_string(window) + ";burst=" + number(limit.burst);
}

RateLimitMiddleware::RateLimitMiddleware(std::string name, RateLimitConfig config,
                                         std::shared_ptr<resilience::RateLimiterBackend> backend,
                                         std::function<void()> on_degraded)
    : name_(std::move(name)),
      config_(std::move(config)),
      on_degraded_(std::move(on_degraded)),
      backend_(std::move(backend)) {
  for (auto& rule : config_.limits) {
    if (rule.policy.empty()) rule.policy = policy_of(rule.limit);
    if (!policies_.empty()) policies_ += ", ";
    policies_ += rule.policy;
  }
  // Without RateLimit-* headers post_handle has nothing to do for any request: the chain does
  // not call it, and pre_handle keeps no report for it.
  skip_hooks(false, !config_.headers);
}

void RateLimitMiddleware::count(const LimitRule& rule, const RateDecision& d) const {
  observe::ShardedCounter* c = d.degraded
                                   ? (d.allowed ? rule.allowed_degraded : rule.denied_degraded)
                                   : (d.allowed ? rule.allowed : rule.denied);
  if (c != nullptr) c->add();
  if (d.degraded && on_degraded_) on_degraded_();
}

void RateLimitMiddleware::set_headers(Exchange& ex, const RateDecision& d) const {
  Response& r = ex.response();
  r.set_header("RateLimit-Limit", number(d.limit));
  r.set_header("RateLimit-Remaining",
               std::to_string(static_cast<long long>(std::max(0.0, std::floor(d.remaining)))));
  r.set_header("RateLimit-Reset", std::to_string(ceil_seconds(d.reset_after)));
  r.set_header("RateLimit-Policy", policies_);
}

void RateLimitMiddleware::reject(Exchange& ex, const RateDecision& d) const {
  const long long retry = std::max(1LL, ceil_seconds(d.retry_after));
  if (d.degraded) {
    ex.answer_error(
        config_.fail_closed_status, "rate_limiter_unavailable",
        "the rate limiter's backend is unavailable; retry in " + std::to_string(retry) + " s");
  } else {
    ex.answer_error(429, "rate_limited",
                    "rate limit exceeded; retry in " + std::to_string(retry) + " s");
    set_headers(ex, d);
  }
  ex.response().set_header("Retry-After", std::to_string(retry));
}

Decision RateLimitMiddleware::pre_handle(Exchange& ex) {
  std::optional<RateDecision> tightest;                         // of the limits decided at once
  std::vector<std::pair<const LimitRule*, std::string>> later;  // limits the backend answers later
  // The key is built in a buffer the thread keeps: a key is longer than a string's inline room
  // ("rate_limit:per_ip:192.0.2.1"), and a fresh string cost an allocation and a free per limit
  // per request. A backend that answers later gets its own copy (`later`).
  thread_local std::string key;
  // One "now" for every limit: this hook's start, the chain's reading when it times hooks on the
  // backend's clock (Exchange::hook_time). A remote backend keeps its own time.
  const Clock* clock = backend_->clock();
  const SteadyTime now = clock != nullptr ? ex.hook_time(*clock) : SteadyTime{};
  for (const LimitRule& rule : config_.limits) {
    key.clear();
    key += name_;
    key += ':';
    key += rule.name;
    key += ':';
    rule.key.append_to(ex, key);
    auto d = clock != nullptr ? backend_->try_decide_at(key, rule.limit, now)
                              : backend_->try_decide(key, rule.limit);
    if (d) {
      count(rule, *d);
      if (!d->allowed) {
        reject(ex, *d);
        return Decision::respond();
      }
      if (!tightest || d->remaining < tightest->remaining) tightest = *d;
    } else {
      later.emplace_back(&rule, key);
    }
  }
  if (later.empty()) {
    if (config_.headers) {
      auto& call = InstanceState<RateCall>::emplace(ex.context(), this);
      call.has_report = true;
      call.report = tightest ? *tightest : RateDecision{.allowed = true};
    }
    return Decision::next();
  }
  // Slot 0: the tightest decision made at once; then one slot per limit decided later.
  auto pending = std::make_shared<Pending>(later.size() + 1);
  pending->decisions[0] = tightest;
  pending->remaining.store(static_cast<int>(later.size()));
  pending->resume = ex.defer();
  for (std::size_t j = 0; j < later.size(); ++j) {
    const LimitRule* rule = later[j].first;
    backend_->decide_async(
        std::move(later[j].second), rule->limit,
        [this, pending, rule, slot = j + 1](RateDecision d) {
          count(*rule, d);
          pending->decisions[slot] = d;
          if (pending->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
          pending->resume.with([this, verdict = pick(pending->decisions)](Exchange& ex) {
            return decide(ex, verdict);
          });
        });
  }
  return Decision::wait();
}

// The verdict of limits decided later, on the request's worker: a denial answers now, an
// allowance leaves the headers to post_handle (the handler writes the response after this).
Decision RateLimitMiddleware::decide(Exchange& ex, const RateDecision& verdict) const {
  if (!verdict.allowed) {
    reject(ex, verdict);
    return Decision::respond();
  }
  if (!config_.headers) return Decision::next();
  auto& call = InstanceState<RateCall>::emplace(ex.context(), this);
  call.has_report = true;
  call.report = verdict;
  return Decision::next();
}

void RateLimitMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  const auto* call = InstanceState<RateCall>::find(ex.context(), this);
  // No report: rejected (the answer is complete) or cancelled while the backend decided.
  if (call == nullptr || !call->has_report) return;
  if (config_.headers) set_headers(ex, call->report);
}

}  // namespace sluice::middleware
