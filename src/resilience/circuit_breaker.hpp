// CircuitBreaker — Sentinel-style breaker (slow-request ratio, error ratio, error count) over
// a sliding window, with bounded half-open probing. Knows nothing of HTTP.
//
//   CircuitBreaker breaker("orders", {.strategy = Strategy::kErrorRatio, .threshold = 0.5});
//   if (Permit p = breaker.try_acquire()) breaker.on_complete(p, elapsed, /*is_error=*/failed);
//   else reply_503(breaker.retry_after(clock.now()));
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "resilience/sliding_window.hpp"
#include "resilience/trip_bound.hpp"
#include "sluice/clock.hpp"

namespace sluice::resilience {

// What trips the breaker. Checked only once the window holds min_request_amount requests.
enum class Strategy : uint8_t {
  kSlowRequestRatio,  // slow / total > threshold; slow means rt > max_allowed_rt
  kErrorRatio,        // errors / total > threshold
  kErrorCount,        // errors >= threshold
};

// Breaker states; the numbers are the values exported as metrics and in the admin API.
enum class State : uint8_t {
  kClosed = 0,    // requests pass; outcomes are counted and may trip the breaker
  kOpen = 1,      // requests are rejected until retry_timeout has passed
  kHalfOpen = 2,  // a few probes pass; the first probe outcome closes or reopens
};

std::string_view to_string(State state);
std::string_view to_string(Strategy strategy);

// Field names follow Sentinel-Go's circuitbreaker.Rule.
struct CircuitBreakerConfig {
  Strategy strategy = Strategy::kErrorRatio;
  // A ratio in [0, 1] (tripping strictly above it, so 1.0 never trips; Sentinel-Go also trips
  // at equality) or, for kErrorCount, an error count >= 1.
  double threshold = 0.5;
  std::chrono::milliseconds retry_timeout{60000};
  uint32_t min_request_amount = 10;
  std::chrono::milliseconds stat_interval{1000};
  uint32_t stat_sliding_window_bucket_count = 1;
  std::chrono::milliseconds max_allowed_rt{0};  // required by kSlowRequestRatio
  uint32_t half_open_max_probes = 1;            // probes in flight at once in HALF_OPEN
  // Probes that must pass, one after another, before HALF_OPEN closes (Resilience4j's permitted
  // calls in half-open); any failing probe reopens at once.
  uint32_t half_open_success_probes = 1;
  // After HALF_OPEN closes, traffic comes back gradually (Envoy's slow start): the admitted share
  // rises linearly from ramp_start_percent to 100 % over `ramp`; the rest is rejected as in OPEN.
  // While ramping the breaker trips on its threshold once ramp_min_request_amount outcomes are
  // in the window, instead of min_request_amount. 0: no ramp (all traffic at once).
  std::chrono::milliseconds ramp{0};
  double ramp_start_percent = 10;
  uint32_t ramp_min_request_amount = 5;

  // Empty when valid, otherwise one message naming the offending field.
  std::string validate() const;
};

// The answer of try_acquire(). A rejected permit may be passed to on_complete (ignored).
struct Permit {
  bool allowed = false;
  State state = State::kClosed;  // the state the request was admitted (or rejected) in
  uint64_t epoch = 0;            // the state generation; completions from older ones are late

  explicit operator bool() const { return allowed; }
};

// A consistent-enough view for the admin API and metrics.
struct CircuitBreakerSnapshot {
  std::string name;
  State state = State::kClosed;
  bool forced = false;
  uint64_t epoch = 0;
  uint32_t probes_in_flight = 0;
  WindowStats window;
  Nanos retry_after{0};
  uint64_t rejected = 0;
  double admitted_share = 1.0;  // below 1 while ramping after a close
};

class CircuitBreaker {
 public:
  using Listener = std::function<void(std::string_view name, State from, State to)>;

  // Throws std::invalid_argument with config.validate()'s message when the config is invalid.
  CircuitBreaker(std::string name, CircuitBreakerConfig config,
                 const Clock& clock = system_steady_clock());

  // Lock-free in CLOSED (two atomic loads; a clock read and a draw while ramping). In OPEN, the
  // first caller after retry_timeout moves the breaker to HALF_OPEN and becomes a probe.
  Permit try_acquire();

  // Reports the outcome of an admitted request. Only a completion from the current epoch
  // counts: it is recorded in the window (CLOSED) or decides a probe (HALF_OPEN); late ones
  // from an earlier epoch neither count nor change the state.
  void on_complete(const Permit& permit, Nanos rt, bool is_error);
  // The same, with the completion time the caller has read already (it measured rt with it),
  // which saves a clock read on the hot path.
  void on_complete(const Permit& permit, Nanos rt, bool is_error, SteadyTime now);

  // An admitted request ended without an outcome (client gone, cancelled): frees its probe
  // slot in HALF_OPEN; otherwise no effect.
  void on_abandon(const Permit& permit);

  State state() const;
  bool is_forced() const;

  // Forced states hold until reset(); thresholds and retry timeouts are ignored meanwhile.
  void force_open();
  void force_closed();
  // CLOSED, not forced, empty window.
  void reset();

  // How long a rejected caller should wait: the time left until the retry timeout in OPEN,
  // retry_timeout when forced open, 0 otherwise (callers round up to at least 1 s).
  Nanos retry_after(SteadyTime now) const;

  // Called after every state change, in the order of the changes, never under the breaker's
  // lock, so a listener may call back into the breaker. The thread that changes the state may
  // return before its listener call when another thread is already delivering events.
  void add_listener(Listener listener);

  CircuitBreakerSnapshot snapshot() const;
  const std::string& name() const { return name_; }
  const CircuitBreakerConfig& config() const { return config_; }

 private:
  struct Event {
    State from;
    State to;
  };

  Permit try_acquire_slow(uint64_t word);
  Permit admit_ramping(uint64_t word);
  void free_probe_slot(const Permit& permit);
  // The share of requests admitted at `now_ns` while ramping; 1 when not ramping.
  double ramp_share(int64_t now_ns) const;
  // Moves from the state/epoch in `expected` to `to` when nobody else has moved it first.
  // Returns the new word, or 0 when the breaker had already left `expected`.
  uint64_t transition(uint64_t expected, State to, SteadyTime now);
  bool is_trip(const WindowStats& stats, bool ramping) const;
  // In CLOSED, after a success recorded by the worker that owns `known`: whether the window
  // must be summed over all workers, because this success may trip the breaker.
  bool success_may_trip(KnownWindow& known, uint64_t word, int64_t bucket, bool ramping) const;
  // Whether an outcome counts against the breaker: slow for kSlowRequestRatio, else an error.
  bool is_bad(bool is_error, bool is_slow) const {
    return config_.strategy == Strategy::kSlowRequestRatio ? is_slow : is_error;
  }
  // Replaces the word under mu_ (which the caller holds) and queues an event.
  uint64_t publish_locked(State to, bool forced, uint32_t probes);
  void deliver_events();

  const std::string name_;
  const CircuitBreakerConfig config_;
  const Clock& clock_;
  const Nanos slow_rt_;
  const bool track_slow_;

  // state (2 bits) | forced (1 bit) | probes in flight (20 bits) | epoch (41 bits): one word,
  // so that a probe slot is always taken in the epoch the caller saw.
  std::atomic<uint64_t> word_{0};
  std::atomic<int64_t> next_retry_ns_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<int64_t> ramp_until_ns_{0};     // 0: not ramping
  std::atomic<uint32_t> probe_successes_{0};  // in the current HALF_OPEN epoch
  SlidingWindow window_;
  // Per worker shard (detail::shard_index()): its last exact sum of window_. Only a worker
  // that is its shard's sole writer uses its entry; other threads always sum.
  std::unique_ptr<KnownWindow[]> known_;
  std::size_t known_mask_;

  mutable std::mutex mu_;  // transitions, listeners and the event queue
  std::vector<Listener> listeners_;
  std::vector<Event> pending_;
  bool delivering_ = false;

  // Bad outcomes (see is_bad) ever recorded in CLOSED: a worker's KnownWindow holds only while
  // this has not moved. Written on bad outcomes only, on a line of its own, so that successes,
  // which read it, do not share a written line.
  alignas(64) std::atomic<uint64_t> bad_seq_{0};
};

}  // namespace sluice::resilience
