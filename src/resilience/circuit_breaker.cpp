#include "resilience/circuit_breaker.hpp"

#include <algorithm>
#include <random>
#include <sstream>
#include <stdexcept>

#include "core/worker_shard.hpp"

namespace sluice::resilience {
namespace {

// Layout of CircuitBreaker::word_.
constexpr uint64_t kStateMask = 0x3;
constexpr uint64_t kForcedBit = 0x4;
constexpr int kProbeShift = 3;
constexpr uint64_t kProbeBits = 20;
constexpr uint64_t kProbeMask = ((uint64_t{1} << kProbeBits) - 1) << kProbeShift;
constexpr uint64_t kProbeOne = uint64_t{1} << kProbeShift;
constexpr int kEpochShift = kProbeShift + int(kProbeBits);
constexpr uint32_t kMaxProbes = (uint32_t{1} << kProbeBits) - 1;

State state_of(uint64_t w) {
  return State(w & kStateMask);
}
bool forced_of(uint64_t w) {
  return (w & kForcedBit) != 0;
}
uint32_t probes_of(uint64_t w) {
  return uint32_t((w & kProbeMask) >> kProbeShift);
}
uint64_t epoch_of(uint64_t w) {
  return w >> kEpochShift;
}
bool same_generation(uint64_t a, uint64_t b) {
  return ((a ^ b) & ~kProbeMask) == 0;
}

uint64_t make_word(State s, bool forced, uint32_t probes, uint64_t epoch) {
  return uint64_t(s) | (forced ? kForcedBit : 0) | (uint64_t(probes) << kProbeShift) |
         (epoch << kEpochShift);
}

int64_t to_ns(SteadyTime t) {
  return std::chrono::duration_cast<Nanos>(t.time_since_epoch()).count();
}

}  // namespace

std::string_view to_string(State state) {
  switch (state) {
    case State::kClosed:
      return "closed";
    case State::kOpen:
      return "open";
    case State::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

std::string_view to_string(Strategy strategy) {
  switch (strategy) {
    case Strategy::kSlowRequestRatio:
      return "slow_request_ratio";
    case Strategy::kErrorRatio:
      return "error_ratio";
    case Strategy::kErrorCount:
      return "error_count";
  }
  return "unknown";
}

std::string CircuitBreakerConfig::validate() const {
  std::ostringstream err;
  const bool ratio = strategy != Strategy::kErrorCount;
  if (ratio && !(threshold >= 0.0 && threshold <= 1.0)) {
    err << "threshold: must be a ratio in [0, 1] for " << to_string(strategy) << ", got "
        << threshold;
  } else if (!ratio && !(threshold >= 1.0)) {
    err << "threshold: must be an error count >= 1 for error_count, got " << threshold;
  } else if (retry_timeout.count() <= 0) {
    err << "retry_timeout: must be > 0ms, got " << retry_timeout.count() << "ms";
  } else if (stat_interval.count() <= 0) {
    err << "stat_interval: must be > 0ms, got " << stat_interval.count() << "ms";
  } else if (stat_sliding_window_bucket_count == 0) {
    err << "stat_sliding_window_bucket_count: must be >= 1";
  } else if (stat_interval.count() % stat_sliding_window_bucket_count != 0) {
    err << "stat_sliding_window_bucket_count: must divide stat_interval (" << stat_interval.count()
        << "ms), got " << stat_sliding_window_bucket_count;
  } else if (strategy == Strategy::kSlowRequestRatio && max_allowed_rt.count() <= 0) {
    err << "max_allowed_rt: must be > 0ms for slow_request_ratio";
  } else if (max_allowed_rt.count() < 0) {
    err << "max_allowed_rt: must be >= 0ms, got " << max_allowed_rt.count() << "ms";
  } else if (half_open_max_probes == 0 || half_open_max_probes > kMaxProbes) {
    err << "half_open_max_probes: must be in [1, " << kMaxProbes << "], got "
        << half_open_max_probes;
  } else if (half_open_success_probes == 0) {
    err << "half_open_success_probes: must be >= 1";
  } else if (ramp.count() < 0) {
    err << "ramp: must be >= 0ms, got " << ramp.count() << "ms";
  } else if (!(ramp_start_percent > 0 && ramp_start_percent <= 100)) {
    err << "ramp_start_percent: must be in (0, 100], got " << ramp_start_percent;
  }
  return err.str();
}

namespace {
const CircuitBreakerConfig& checked(const CircuitBreakerConfig& config) {
  if (std::string err = config.validate(); !err.empty()) throw std::invalid_argument(err);
  return config;
}
}  // namespace

CircuitBreaker::CircuitBreaker(std::string name, CircuitBreakerConfig config, const Clock& clock)
    : name_(std::move(name)),
      config_(checked(config)),
      clock_(clock),
      slow_rt_(config_.max_allowed_rt),
      track_slow_(config_.max_allowed_rt.count() > 0),
      window_(config_.stat_interval, config_.stat_sliding_window_bucket_count),
      known_(std::make_unique<KnownWindow[]>(detail::shard_count())),
      known_mask_(detail::shard_count() - 1) {}

//            trip: threshold exceeded with total >= min_request_amount
//   +--------+ ------------------------------------------------> +------+
//   | CLOSED |                                                   | OPEN |
//   +--------+                                                   +------+
//       ^                                                          ^   |
//       | half_open_success_probes      a probe fails              |   | retry_timeout passed:
//       | probes pass (window reset)    (retry timeout restarts)   |   | the next try_acquire()
//       |                   +-----------+                          |   | becomes a probe
//       +------------------ | HALF_OPEN | -------------------------+   |
//                           +-----------+ <----------------------------+
//
//   With `ramp` > 0, the CLOSED reached from HALF_OPEN ramps first: a share of requests rising
//   from ramp_start_percent to 100 % over `ramp` is admitted, the rest rejected as in OPEN, and
//   the threshold trips once ramp_min_request_amount outcomes are in (instead of
//   min_request_amount) — so a probe that happened to be fast does not let a flood back onto a
//   resource that is still sick:
//
//     share |                    ______ 100 %
//           |              ____/
//           |        ____/
//           |  ____/         trip on the threshold: OPEN at once
//           |_/ start %
//           +----------------------------> time since the close (0 .. ramp)
//
//   force_open() / force_closed(): any state -> OPEN / CLOSED, marked forced: no automatic
//   transition until reset(), which returns any state to CLOSED, unforced, window empty.
//
// Every transition bumps the epoch, so permits issued before it are recognised as late.
// In HALF_OPEN at most half_open_max_probes permits are in flight; the rest are rejected as in
// OPEN. The first probe outcome decides; the other probes of that epoch become late.
Permit CircuitBreaker::try_acquire() {
  const uint64_t w = word_.load(std::memory_order_acquire);
  if (state_of(w) == State::kClosed) {
    if (ramp_until_ns_.load(std::memory_order_relaxed) == 0) {
      return Permit{true, State::kClosed, epoch_of(w)};
    }
    return admit_ramping(w);
  }
  return try_acquire_slow(w);
}

double CircuitBreaker::ramp_share(int64_t now_ns) const {
  const int64_t until = ramp_until_ns_.load(std::memory_order_relaxed);
  const int64_t span = Nanos(config_.ramp).count();
  if (until == 0 || span <= 0 || now_ns >= until) return 1.0;
  const double start = config_.ramp_start_percent / 100.0;
  const double done = 1.0 - static_cast<double>(until - now_ns) / static_cast<double>(span);
  return std::clamp(start + (1.0 - start) * done, start, 1.0);
}

Permit CircuitBreaker::admit_ramping(uint64_t w) {
  const int64_t now = to_ns(clock_.now());
  const double share = ramp_share(now);
  if (share >= 1.0) {
    int64_t until = ramp_until_ns_.load(std::memory_order_relaxed);
    if (until != 0 && now >= until) ramp_until_ns_.compare_exchange_strong(until, 0);
    return Permit{true, State::kClosed, epoch_of(w)};
  }
  thread_local std::minstd_rand rng{std::random_device{}()};
  if (std::uniform_real_distribution<double>(0.0, 1.0)(rng) < share) {
    return Permit{true, State::kClosed, epoch_of(w)};
  }
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return Permit{false, State::kClosed, epoch_of(w)};
}

Permit CircuitBreaker::try_acquire_slow(uint64_t w) {
  for (;;) {
    switch (state_of(w)) {
      case State::kClosed:
        return Permit{true, State::kClosed, epoch_of(w)};
      case State::kOpen: {
        const SteadyTime now = clock_.now();
        if (forced_of(w) || to_ns(now) < next_retry_ns_.load(std::memory_order_acquire)) {
          rejected_.fetch_add(1, std::memory_order_relaxed);
          return Permit{false, State::kOpen, epoch_of(w)};
        }
        // The caller that moves the breaker to HALF_OPEN takes the first probe slot.
        if (const uint64_t nw = transition(w, State::kHalfOpen, now); nw != 0) {
          return Permit{true, State::kHalfOpen, epoch_of(nw)};
        }
        w = word_.load(std::memory_order_acquire);
        break;
      }
      case State::kHalfOpen:
        if (probes_of(w) >= config_.half_open_max_probes) {
          rejected_.fetch_add(1, std::memory_order_relaxed);
          return Permit{false, State::kHalfOpen, epoch_of(w)};
        }
        if (word_.compare_exchange_weak(w, w + kProbeOne, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
          return Permit{true, State::kHalfOpen, epoch_of(w)};
        }
        break;  // w was reloaded by the failed CAS
    }
  }
}

bool CircuitBreaker::success_may_trip(KnownWindow& known, uint64_t w, int64_t bucket,
                                      bool ramping) const {
  if (!known.still_holds(epoch_of(w), bad_seq_.load(std::memory_order_acquire), bucket)) {
    return true;
  }
  ++known.total_at_least;  // this success
  const uint32_t minimum = ramping ? config_.ramp_min_request_amount : config_.min_request_amount;
  return may_trip(config_.strategy != Strategy::kErrorCount, config_.threshold, minimum, known.bad,
                  known.total_at_least);
}

bool CircuitBreaker::is_trip(const WindowStats& s, bool ramping) const {
  const uint32_t minimum = ramping ? config_.ramp_min_request_amount : config_.min_request_amount;
  if (s.total == 0 || s.total < minimum) return false;
  switch (config_.strategy) {
    case Strategy::kSlowRequestRatio:
      return s.slow_ratio() > config_.threshold;
    case Strategy::kErrorRatio:
      return s.error_ratio() > config_.threshold;
    case Strategy::kErrorCount:
      return double(s.errors) >= config_.threshold;
  }
  return false;
}

// Late completions (epoch != current) are dropped entirely, also from the window: after
// CLOSED -> OPEN they cannot matter, and after HALF_OPEN -> CLOSED the window starts empty,
// so results of requests sent to the sick resource before the trip must not count against
// the freshly closed breaker.
void CircuitBreaker::on_complete(const Permit& permit, Nanos rt, bool is_error) {
  if (permit.allowed) on_complete(permit, rt, is_error, clock_.now());
}

void CircuitBreaker::on_complete(const Permit& permit, Nanos rt, bool is_error, SteadyTime now) {
  if (!permit.allowed) return;
  const uint64_t w = word_.load(std::memory_order_acquire);
  if (epoch_of(w) != permit.epoch) return;
  const bool is_slow = track_slow_ && rt > slow_rt_;
  switch (state_of(w)) {
    case State::kClosed: {
      // Each worker counts in its own shard of the window; the shards are summed only when
      // this outcome may trip the breaker: a bad one always, a success only when the worker's
      // last sum no longer holds or says it might (trip_bound.hpp).
      const std::size_t shard = detail::shard_index();
      const int64_t bucket = window_.record_in(shard, now, is_error, is_slow, rt);
      if (forced_of(w)) return;
      const bool ramping = ramp_share(to_ns(now)) < 1.0;
      const bool bad = is_bad(is_error, is_slow);
      const bool own = detail::sole_writer(shard);
      if (!bad && own && !success_may_trip(known_[shard & known_mask_], w, bucket, ramping)) {
        return;
      }
      // Read before the sum, so that a bad outcome the sum may miss moves it past what we keep.
      const uint64_t seq = bad ? bad_seq_.fetch_add(1, std::memory_order_acq_rel) + 1
                               : bad_seq_.load(std::memory_order_acquire);
      const WindowStats s = window_.stats(now);
      if (is_trip(s, ramping)) {
        transition(w, State::kOpen, now);
      } else if (own) {
        const uint64_t bad_in_window =
            config_.strategy == Strategy::kSlowRequestRatio ? s.slow : s.errors;
        known_[shard & known_mask_] = KnownWindow{epoch_of(w), seq, bucket, bad_in_window, s.total};
      }
      return;
    }
    case State::kHalfOpen: {
      const bool failed = config_.strategy == Strategy::kSlowRequestRatio ? is_slow : is_error;
      if (failed) {
        transition(w, State::kOpen, now);
      } else if (probe_successes_.fetch_add(1, std::memory_order_acq_rel) + 1 >=
                 config_.half_open_success_probes) {
        transition(w, State::kClosed, now);
      } else {
        free_probe_slot(permit);  // passed: its slot goes to the next probe
      }
      return;
    }
    case State::kOpen:
      return;  // an allowed permit never carries an OPEN epoch
  }
}

void CircuitBreaker::on_abandon(const Permit& permit) {
  if (!permit.allowed || permit.state != State::kHalfOpen) return;
  free_probe_slot(permit);
}

void CircuitBreaker::free_probe_slot(const Permit& permit) {
  uint64_t w = word_.load(std::memory_order_acquire);
  while (epoch_of(w) == permit.epoch && state_of(w) == State::kHalfOpen && probes_of(w) > 0) {
    if (word_.compare_exchange_weak(w, w - kProbeOne, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      return;
    }
  }
}

uint64_t CircuitBreaker::publish_locked(State to, bool forced, uint32_t probes) {
  uint64_t cur = word_.load(std::memory_order_acquire);
  uint64_t next = 0;
  // Only probe-count changes race with us (they do not take mu_), hence the loop.
  do {
    next = make_word(to, forced, probes, epoch_of(cur) + 1);
  } while (!word_.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                        std::memory_order_acquire));
  if (state_of(cur) != to) pending_.push_back(Event{state_of(cur), to});
  return next;
}

uint64_t CircuitBreaker::transition(uint64_t expected, State to, SteadyTime now) {
  uint64_t next = 0;
  {
    std::lock_guard lock(mu_);
    if (!same_generation(word_.load(std::memory_order_acquire), expected)) return 0;
    // Side effects go first so that whoever sees the new state also sees them.
    const State from = state_of(expected);
    if (to == State::kOpen) {
      next_retry_ns_.store(to_ns(now) + Nanos(config_.retry_timeout).count(),
                           std::memory_order_release);
      ramp_until_ns_.store(0, std::memory_order_relaxed);
    } else if (to == State::kClosed) {
      window_.reset();
      if (from == State::kHalfOpen && config_.ramp.count() > 0) {
        ramp_until_ns_.store(to_ns(now) + Nanos(config_.ramp).count(), std::memory_order_relaxed);
      }
    } else if (to == State::kHalfOpen) {
      probe_successes_.store(0, std::memory_order_relaxed);
    }
    next = publish_locked(to, false, to == State::kHalfOpen ? 1 : 0);
  }
  deliver_events();
  return next;
}

void CircuitBreaker::deliver_events() {
  std::unique_lock lock(mu_);
  if (delivering_) return;  // that thread delivers our events too, in order
  delivering_ = true;
  while (!pending_.empty()) {
    std::vector<Event> batch;
    batch.swap(pending_);
    const std::vector<Listener> listeners = listeners_;
    lock.unlock();
    for (const Event& e : batch) {
      for (const Listener& l : listeners)
        l(name_, e.from, e.to);
    }
    lock.lock();
  }
  delivering_ = false;
}

State CircuitBreaker::state() const {
  return state_of(word_.load(std::memory_order_acquire));
}

bool CircuitBreaker::is_forced() const {
  return forced_of(word_.load(std::memory_order_acquire));
}

void CircuitBreaker::force_open() {
  {
    std::lock_guard lock(mu_);
    ramp_until_ns_.store(0, std::memory_order_relaxed);
    publish_locked(State::kOpen, true, 0);
  }
  deliver_events();
}

void CircuitBreaker::force_closed() {
  {
    std::lock_guard lock(mu_);
    window_.reset();
    ramp_until_ns_.store(0, std::memory_order_relaxed);
    publish_locked(State::kClosed, true, 0);
  }
  deliver_events();
}

void CircuitBreaker::reset() {
  {
    std::lock_guard lock(mu_);
    window_.reset();
    ramp_until_ns_.store(0, std::memory_order_relaxed);
    publish_locked(State::kClosed, false, 0);
  }
  deliver_events();
}

Nanos CircuitBreaker::retry_after(SteadyTime now) const {
  const uint64_t w = word_.load(std::memory_order_acquire);
  if (state_of(w) != State::kOpen) return Nanos{0};
  if (forced_of(w)) return Nanos(config_.retry_timeout);
  const int64_t left = next_retry_ns_.load(std::memory_order_acquire) - to_ns(now);
  return Nanos(std::max<int64_t>(left, 0));
}

void CircuitBreaker::add_listener(Listener listener) {
  std::lock_guard lock(mu_);
  listeners_.push_back(std::move(listener));
}

CircuitBreakerSnapshot CircuitBreaker::snapshot() const {
  const SteadyTime now = clock_.now();
  const uint64_t w = word_.load(std::memory_order_acquire);
  CircuitBreakerSnapshot s;
  s.name = name_;
  s.state = state_of(w);
  s.forced = forced_of(w);
  s.epoch = epoch_of(w);
  s.probes_in_flight = s.state == State::kHalfOpen ? probes_of(w) : 0;
  s.window = window_.stats(now);
  s.retry_after = retry_after(now);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.admitted_share = s.state == State::kClosed ? ramp_share(to_ns(now)) : 0.0;
  return s;
}

}  // namespace sluice::resilience
