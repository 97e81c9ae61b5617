#include "resilience/redis/redis_rate_limiter.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sluice::resilience::redis {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Error replies that mean "Redis cannot serve now" rather than "the script is wrong": they count
// towards the breaker like a lost connection.
bool is_unavailable_reply(const RedisReply& r) {
  static constexpr std::string_view kPrefixes[] = {"LOADING",     "BUSY",     "READONLY",
                                                   "MASTERDOWN",  "NOAUTH",   "WRONGPASS",
                                                   "CLUSTERDOWN", "TRYAGAIN", "NOPERM"};
  for (auto p : kPrefixes) {
    if (r.str.rfind(p, 0) == 0) return true;
  }
  return false;
}

nanoseconds one_token(const RateLimit& limit) {
  return nanoseconds(static_cast<long long>(1e9 / limit.rate_per_second));
}

}  // namespace

// Tokens Redis granted at one time; spent oldest first and dropped after lease_max_age.
struct Batch {
  SteadyTime at;
  double tokens;
};

struct RedisRateLimiter::Lease {
  RateLimit limit{};
  std::deque<Batch> batches;
  double tokens = 0;           // sum of batches
  SteadyTime next_fetch_at{};  // Redis ran dry: deny locally until then instead of asking
  bool refilling = false;
  long long last_want = 0;
  std::vector<std::function<void(RateDecision)>> waiters;
  std::uint64_t demand = 0;  // decisions since window_start
  SteadyTime window_start{};
  double rate_estimate = 0;  // decisions per second on this instance (EWMA)
  long long remote_remaining = 0;
  SteadyTime remote_reset_at{};
  SteadyTime last_used{};
};

struct RedisRateLimiter::Shard {
  std::mutex mu;
  std::unordered_map<std::string, Lease, StringHash, std::equal_to<>> leases;
  std::uint64_t ops = 0;
};

RedisRateLimiter::RedisRateLimiter(RedisLimiterConfig config, RedisLimiterHooks hooks,
                                   const Clock& clock)
    : config_(std::move(config)), hooks_(std::move(hooks)), clock_(clock), local_(clock) {
  if (auto err = config_.validate(); !err.empty()) throw std::invalid_argument(err);
  for (auto& s : shards_)
    s = std::make_unique<Shard>();

  RedisConnectionOptions options;
  options.host = config_.host;
  options.port = config_.port;
  options.username = config_.username;
  options.password = config_.password;
  options.db = config_.db;
  options.connect_timeout = config_.connect_timeout;
  options.command_timeout = config_.command_timeout;
  options.reconnect_min = config_.reconnect_backoff_min;
  options.reconnect_max = config_.reconnect_backoff_max;
  options.wedged_after = std::max(milliseconds(1000), 10 * config_.command_timeout);
  // Loading on every connect means a restarted Redis has the script before the first EVALSHA.
  options.setup.push_back(TokenBucketScript::load_args());

  RedisConnectionHooks connection_hooks;
  connection_hooks.on_rtt = [this](double seconds) {
    rtt_count_.fetch_add(1, std::memory_order_relaxed);
    rtt_ns_sum_.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), std::memory_order_relaxed);
    if (hooks_.on_rtt) hooks_.on_rtt(seconds);
  };
  connection_hooks.on_error = [this](const std::string& why) {
    std::lock_guard lock(error_mutex_);
    last_error_ = why;
  };
  client_ = std::make_unique<RedisClient>(options, config_.connections, connection_hooks);
}

RedisRateLimiter::~RedisRateLimiter() {
  client_->stop();
}

RedisLimiterStats RedisRateLimiter::stats() const {
  RedisLimiterStats s;
  s.backend_up = backend_up();
  s.decisions_total = decisions_.load(std::memory_order_relaxed);
  s.decisions_degraded = degraded_.load(std::memory_order_relaxed);
  s.decisions_leased = leased_.load(std::memory_order_relaxed);
  s.redis_calls_total = calls_.load(std::memory_order_relaxed);
  s.errors_timeout = errors_timeout_.load(std::memory_order_relaxed);
  s.errors_connection = errors_connection_.load(std::memory_order_relaxed);
  s.errors_script = errors_script_.load(std::memory_order_relaxed);
  s.script_loads_total = script_loads_.load(std::memory_order_relaxed);
  s.rtt_count = rtt_count_.load(std::memory_order_relaxed);
  s.rtt_seconds_sum = static_cast<double>(rtt_ns_sum_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

std::string RedisRateLimiter::last_error() const {
  std::lock_guard lock(error_mutex_);
  return last_error_;
}

// ---- decisions -----------------------------------------------------------------------------

RateDecision RedisRateLimiter::invalid_limit(const RateLimit& limit) {
  // A misconfigured limit must not turn into allow-all: deny, visibly.
  decisions_.fetch_add(1, std::memory_order_relaxed);
  RateDecision d;
  d.limit = limit.burst;
  d.retry_after = nanoseconds::max();
  return d;
}

RateDecision RedisRateLimiter::policy_decision(std::string_view key, const RateLimit& limit) {
  decisions_.fetch_add(1, std::memory_order_relaxed);
  degraded_.fetch_add(1, std::memory_order_relaxed);
  RateDecision d;
  switch (config_.on_failure) {
    case RedisLimiterConfig::FailurePolicy::kFailOpen:
      d.allowed = true;
      d.limit = limit.burst;
      d.remaining = std::max(0.0, std::floor(limit.burst) - 1);
      break;
    case RedisLimiterConfig::FailurePolicy::kFailClosed:
      d.allowed = false;
      d.limit = limit.burst;
      d.retry_after = std::chrono::seconds(1);
      d.reset_after = std::chrono::seconds(1);
      break;
    case RedisLimiterConfig::FailurePolicy::kLocal: {
      const double n = config_.expected_instances;
      RateLimit share{limit.rate_per_second / n, std::max(1.0, limit.burst / n)};
      d = *local_.try_decide(key, share);
      break;
    }
  }
  d.degraded = true;
  return d;
}

std::optional<RateDecision> RedisRateLimiter::try_decide(std::string_view key,
                                                         const RateLimit& limit) {
  if (!(limit.rate_per_second > 0) || !(limit.burst >= 1)) return invalid_limit(limit);
  if (config_.mode == RedisLimiterConfig::Mode::kPerRequest) {
    if (!backend_up()) return policy_decision(key, limit);
    return std::nullopt;
  }
  const SteadyTime now = clock_.now();
  std::optional<RateDecision> decided;
  std::optional<Refill> refill;
  {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    Lease& lease = lease_locked(shard, key, limit, now);
    ++lease.demand;
    decided = spend_locked(lease, now);
    if (backend_up()) refill = maybe_refill_locked(lease, key, now, !decided.has_value());
  }
  if (refill) issue_refill(std::move(*refill));
  if (decided) return decided;
  if (!backend_up()) return policy_decision(key, limit);
  return std::nullopt;
}

void RedisRateLimiter::decide_async(std::string key, RateLimit limit,
                                    std::function<void(RateDecision)> done) {
  if (!(limit.rate_per_second > 0) || !(limit.burst >= 1)) return done(invalid_limit(limit));
  if (!backend_up()) {
    if (config_.mode == RedisLimiterConfig::Mode::kLeased) {
      if (auto d = try_decide(key, limit)) return done(*d);  // leased tokens first
    }
    return done(policy_decision(key, limit));
  }

  if (config_.mode == RedisLimiterConfig::Mode::kPerRequest) {
    auto argv = TokenBucketScript::evalsha_args(
        TokenBucketScript::bucket_key(config_.key_prefix, key), limit, 1, false);
    run_script(std::move(argv),
               [this, key = std::move(key), limit, done = std::move(done)](RedisReply reply) {
                 auto out = classify(reply);
                 if (!out) return done(policy_decision(key, limit));
                 decisions_.fetch_add(1, std::memory_order_relaxed);
                 done(TokenBucketScript::decision(*out, limit));
               });
    return;
  }

  const SteadyTime now = clock_.now();
  std::optional<RateDecision> decided;
  std::optional<Refill> refill;
  {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    Lease& lease = lease_locked(shard, key, limit, now);
    decided = spend_locked(lease, now);
    if (!decided) lease.waiters.push_back(std::move(done));
    refill = maybe_refill_locked(lease, key, now, !decided.has_value());
  }
  if (refill) issue_refill(std::move(*refill));
  if (decided) done(*decided);
}

// ---- Redis calls and the breaker -----------------------------------------------------------

void RedisRateLimiter::run_script(std::vector<std::string> argv, ReplyCallback done, bool retried) {
  calls_.fetch_add(1, std::memory_order_relaxed);
  auto args = argv;  // kept for the retry; EVALSHA args are short (the sha, not the source)
  client_->execute(std::move(args), [this, argv = std::move(argv), done = std::move(done),
                                     retried](RedisReply reply) mutable {
    if (retried || !TokenBucketScript::is_noscript(reply)) return done(std::move(reply));
    // Redis lost the script (restart, SCRIPT FLUSH, failover): load it and retry once.
    calls_.fetch_add(1, std::memory_order_relaxed);
    client_->execute(
        TokenBucketScript::load_args(),
        [this, argv = std::move(argv), done = std::move(done)](RedisReply load) mutable {
          if (!load.ok()) return done(std::move(load));
          script_loads_.fetch_add(1, std::memory_order_relaxed);
          run_script(std::move(argv), std::move(done), true);
        });
  });
}

std::optional<ScriptOutcome> RedisRateLimiter::classify(const RedisReply& reply) {
  if (auto out = TokenBucketScript::parse(reply)) {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    return out;
  }
  if (reply.failure == RedisFailure::kTimeout) {
    record_failure(
        ErrorKind::kTimeout,
        "redis command timed out after " + std::to_string(config_.command_timeout.count()) + " ms");
  } else if (reply.failure == RedisFailure::kConnection || is_unavailable_reply(reply)) {
    record_failure(ErrorKind::kConnection, reply.str);
  } else {
    record_failure(ErrorKind::kScript, "token bucket script failed: " +
                                           (reply.str.empty() ? "unexpected reply" : reply.str));
  }
  return std::nullopt;
}

void RedisRateLimiter::record_failure(ErrorKind kind, const std::string& why) {
  switch (kind) {
    case ErrorKind::kTimeout:
      errors_timeout_.fetch_add(1, std::memory_order_relaxed);
      break;
    case ErrorKind::kConnection:
      errors_connection_.fetch_add(1, std::memory_order_relaxed);
      break;
    case ErrorKind::kScript:
      // A script error is not an outage: Redis answers, so the breaker would only flap.
      errors_script_.fetch_add(1, std::memory_order_relaxed);
      {
        std::lock_guard lock(error_mutex_);
        last_error_ = why;
      }
      return;
  }
  if (consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1 >=
      config_.failure_threshold) {
    std::string reason = why;
    {
      std::lock_guard lock(error_mutex_);
      if (kind == ErrorKind::kTimeout || last_error_.empty()) last_error_ = why;
      reason = last_error_;
    }
    mark_down(reason);
  }
}

// The breaker of the backend itself:
//
//   UP ──failure_threshold consecutive timeouts/connection errors──▶ DOWN
//   DOWN: every decision takes the policy at once; PING after probe_backoff (doubling, capped)
//   DOWN ──PING ok, then SCRIPT LOAD ok──▶ UP          (any probe failure: next probe later)
void RedisRateLimiter::mark_down(const std::string& why) {
  if (!up_.exchange(false, std::memory_order_acq_rel)) return;
  spdlog::warn(
      "redis rate limiter: backend down ({}); decisions use the {} policy until Redis answers", why,
      to_string(config_.on_failure));
  if (hooks_.on_backend_state) hooks_.on_backend_state(false);
  probe(config_.probe_backoff_min);
}

void RedisRateLimiter::probe(milliseconds backoff) {
  client_->schedule(backoff, [this, backoff] {
    const auto next = std::min(backoff * 2, config_.probe_backoff_max);
    calls_.fetch_add(1, std::memory_order_relaxed);
    client_->execute({"PING"}, [this, next](RedisReply pong) {
      if (!pong.ok()) return probe(next);
      calls_.fetch_add(1, std::memory_order_relaxed);
      client_->execute(TokenBucketScript::load_args(), [this, next](RedisReply load) {
        if (!load.ok() || load.str != TokenBucketScript::sha()) {
          if (load.ok() || load.is_error_reply()) {
            record_failure(ErrorKind::kScript, "SCRIPT LOAD answered: " + load.str);
          }
          return probe(next);
        }
        script_loads_.fetch_add(1, std::memory_order_relaxed);
        mark_up();
      });
    });
  });
}

void RedisRateLimiter::mark_up() {
  consecutive_failures_.store(0, std::memory_order_relaxed);
  if (up_.exchange(true, std::memory_order_acq_rel)) return;
  spdlog::info("redis rate limiter: backend up again ({}:{}); decisions use Redis", config_.host,
               config_.port);
  if (hooks_.on_backend_state) hooks_.on_backend_state(true);
}

// ---- leased mode ---------------------------------------------------------------------------

RedisRateLimiter::Shard& RedisRateLimiter::shard_for(std::string_view key) {
  return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

long long RedisRateLimiter::lease_cap(const RateLimit& limit) const {
  if (config_.lease_max > 0) return config_.lease_max;
  return std::max(1LL, static_cast<long long>(limit.burst / config_.expected_instances));
}

RedisRateLimiter::Lease& RedisRateLimiter::lease_locked(Shard& shard, std::string_view key,
                                                        const RateLimit& limit, SteadyTime now) {
  // Now and then forget keys idle long enough that their tokens expired anyway.
  if (++shard.ops % 4096 == 0) {
    const auto idle = std::max<nanoseconds>(std::chrono::seconds(10), 4 * config_.lease_max_age);
    std::erase_if(shard.leases, [&](const auto& kv) {
      const Lease& l = kv.second;
      return !l.refilling && l.waiters.empty() && now - l.last_used > idle;
    });
  }
  auto it = shard.leases.find(key);
  if (it == shard.leases.end()) {
    it = shard.leases.emplace(std::string(key), Lease{}).first;
    it->second.window_start = now;
  }
  Lease& lease = it->second;
  lease.limit = limit;  // a reload may change it; Redis keeps one bucket per key
  lease.last_used = now;
  while (!lease.batches.empty() && now - lease.batches.front().at > config_.lease_max_age) {
    lease.tokens -= lease.batches.front().tokens;
    lease.batches.pop_front();
  }
  if (lease.batches.empty()) lease.tokens = 0;
  return lease;
}

std::optional<RateDecision> RedisRateLimiter::spend_locked(Lease& lease, SteadyTime now) {
  RateDecision d;
  d.limit = lease.limit.burst;
  d.reset_after = std::max<nanoseconds>(nanoseconds(0), lease.remote_reset_at - now);
  if (lease.tokens >= 1) {
    Batch& oldest = lease.batches.front();
    oldest.tokens -= 1;
    lease.tokens -= 1;
    if (oldest.tokens < 1) {
      lease.tokens -= oldest.tokens;
      lease.batches.pop_front();
    }
    d.allowed = true;
    d.remaining = std::floor(lease.tokens) + static_cast<double>(lease.remote_remaining);
    decisions_.fetch_add(1, std::memory_order_relaxed);
    leased_.fetch_add(1, std::memory_order_relaxed);
    return d;
  }
  if (now < lease.next_fetch_at) {
    // The shared bucket was dry at the last ask: deny here instead of asking Redis again.
    d.allowed = false;
    d.retry_after = std::max(lease.next_fetch_at - now, one_token(lease.limit));
    decisions_.fetch_add(1, std::memory_order_relaxed);
    leased_.fetch_add(1, std::memory_order_relaxed);
    return d;
  }
  return std::nullopt;
}

std::optional<RedisRateLimiter::Refill> RedisRateLimiter::maybe_refill_locked(Lease& lease,
                                                                              std::string_view key,
                                                                              SteadyTime now,
                                                                              bool empty) {
  if (lease.refilling || now < lease.next_fetch_at) return std::nullopt;
  const double low_water =
      std::floor(config_.lease_low_water * static_cast<double>(lease.last_want));
  if (!empty && lease.tokens > low_water) return std::nullopt;
  if (empty && lease.waiters.empty()) return std::nullopt;  // try_decide: decide_async will ask

  // Estimate the local rate over the time since the last refill (EWMA, so one quiet moment
  // does not shrink the lease to nothing).
  const double elapsed = std::chrono::duration<double>(now - lease.window_start).count();
  if (elapsed >= 0.002 && lease.demand > 0) {
    const double observed = static_cast<double>(lease.demand) / elapsed;
    lease.rate_estimate =
        lease.rate_estimate == 0 ? observed : 0.5 * lease.rate_estimate + 0.5 * observed;
    lease.demand = 0;
    lease.window_start = now;
  }
  const long long cap = lease_cap(lease.limit);
  const double period = std::chrono::duration<double>(config_.lease_period).count();
  long long want = static_cast<long long>(std::ceil(lease.rate_estimate * period));
  want = std::max<long long>(want, static_cast<long long>(lease.waiters.size()));
  want = std::clamp<long long>(want, 1, cap);
  lease.refilling = true;
  lease.last_want = want;
  return Refill{std::string(key), lease.limit, want};
}

void RedisRateLimiter::issue_refill(Refill refill) {
  auto argv =
      TokenBucketScript::evalsha_args(TokenBucketScript::bucket_key(config_.key_prefix, refill.key),
                                      refill.limit, static_cast<double>(refill.want), true);
  run_script(std::move(argv),
             [this, refill = std::move(refill)](RedisReply reply) { on_refill(refill, reply); });
}

void RedisRateLimiter::on_refill(const Refill& refill, const RedisReply& reply) {
  const auto out = classify(reply);
  const SteadyTime now = clock_.now();
  std::vector<std::pair<std::function<void(RateDecision)>, RateDecision>> answers;
  std::vector<std::function<void(RateDecision)>> to_policy;
  std::optional<Refill> again;
  {
    Shard& shard = shard_for(refill.key);
    std::lock_guard lock(shard.mu);
    auto it = shard.leases.find(refill.key);
    if (it == shard.leases.end()) return;  // cannot happen: a refilling lease is never erased
    Lease& lease = it->second;
    lease.refilling = false;
    if (!out) {
      // Tokens already leased stay valid; the waiters (lease empty) take the policy.
      to_policy = std::move(lease.waiters);
      lease.waiters.clear();
    } else {
      // Never more than asked for, whatever Redis says: the lease is this instance's share.
      const long long granted = std::min(out->granted, refill.want);
      if (granted > 0) {
        lease.batches.push_back(Batch{now, static_cast<double>(granted)});
        lease.tokens += static_cast<double>(granted);
      }
      lease.remote_remaining = out->remaining;
      lease.remote_reset_at = now + TokenBucketScript::duration_of_ms(out->reset_after_ms);
      if (granted < refill.want) {
        const long long pace_ms =
            out->retry_after_ms < 0
                ? config_.lease_period.count()
                : std::min<long long>(out->retry_after_ms, config_.lease_period.count());
        lease.next_fetch_at = now + milliseconds(std::max(1LL, pace_ms));
      }
      auto waiters = std::move(lease.waiters);
      lease.waiters.clear();
      for (auto& w : waiters) {
        if (auto d = spend_locked(lease, now)) {
          answers.emplace_back(std::move(w), *d);
        } else {
          lease.waiters.push_back(std::move(w));  // Redis was not short: ask again for them
        }
      }
      again = maybe_refill_locked(lease, refill.key, now, lease.tokens < 1);
      if (!again && !lease.waiters.empty()) {
        // Cannot happen (not paced, not refilling), but a waiter must never be stranded.
        for (auto& w : lease.waiters)
          to_policy.push_back(std::move(w));
        lease.waiters.clear();
      }
    }
  }
  if (again) issue_refill(std::move(*again));
  for (auto& [done, d] : answers)
    done(d);
  for (auto& done : to_policy)
    done(policy_decision(refill.key, refill.limit));
}

}  // namespace sluice::resilience::redis
