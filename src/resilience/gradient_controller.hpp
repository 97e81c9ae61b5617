// GradientController — adaptive concurrency (Envoy's gradient controller): measures the
// resource's minimum round-trip time with a few requests at low concurrency, then every
// update interval compares it with the recent sample RTT and moves the concurrency limit:
//
//   gradient  = clamp(min_rtt * (1 + buffer) / sample_rtt, 0.5, 2.0)
//   new_limit = clamp(gradient * limit + sqrt(gradient * limit), min_concurrency, max_concurrency)
//
// A resource that slows down under load (sample RTT above the min) gets less concurrency; one
// that keeps its latency gets more, with sqrt headroom for bursts. Knows nothing of HTTP.
//
//   GradientController c(config, clock);
//   if (!c.try_acquire()) reject_503();  ...  c.release(rtt);   // rtt of the admitted request
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/clock.hpp"

namespace sluice::resilience {

struct GradientConfig {
  std::chrono::milliseconds update_interval{100};      // how often the limit moves
  double sample_percentile = 0.5;                      // the sample RTT of an interval
  std::chrono::milliseconds min_rtt_interval{60'000};  // how often the min RTT is measured anew
  uint32_t min_rtt_requests = 50;  // requests measured at min_concurrency for the min RTT
  uint32_t min_concurrency = 3;
  uint32_t max_concurrency = 1000;
  double buffer = 0.25;  // latency above the min RTT that still counts as "not slower"

  std::string validate() const;  // empty when valid
};

struct GradientSnapshot {
  uint32_t limit = 0;
  uint32_t in_flight = 0;
  double gradient = 1.0;
  Nanos min_rtt{0};     // 0 until measured
  Nanos sample_rtt{0};  // of the last update
  bool measuring_min_rtt = false;
  uint64_t rejected = 0;
};

class GradientController {
 public:
  GradientController(GradientConfig config, const Clock& clock);

  // True and one more in flight when below the limit; false: the caller sheds the request.
  bool try_acquire();
  // An admitted request ended; `rtt` is its time (a sample), `sample` false for one that must
  // not count (cancelled). May recompute the limit (at most once per update interval).
  void release(Nanos rtt, bool sample = true);

  uint32_t limit() const { return limit_.load(std::memory_order_relaxed); }
  GradientSnapshot snapshot() const;
  const GradientConfig& config() const { return config_; }

 private:
  void update_locked(SteadyTime now);
  Nanos percentile_locked(double p);

  const GradientConfig config_;
  const Clock& clock_;
  std::atomic<uint32_t> limit_;
  std::atomic<uint32_t> in_flight_{0};
  std::atomic<uint64_t> rejected_{0};

  mutable std::mutex mu_;  // the samples and the figures below
  std::vector<Nanos> samples_;
  bool measuring_ = true;  // measuring the min RTT at min_concurrency
  uint32_t limit_before_measuring_;
  SteadyTime next_update_;
  SteadyTime next_min_rtt_;
  double gradient_ = 1.0;
  Nanos min_rtt_{0};
  Nanos sample_rtt_{0};
};

}  // namespace sluice::resilience
