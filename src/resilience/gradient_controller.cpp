#include "resilience/gradient_controller.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace sluice::resilience {

std::string GradientConfig::validate() const {
  std::ostringstream err;
  if (update_interval.count() <= 0) {
    err << "update_interval: must be > 0ms";
  } else if (!(sample_percentile > 0 && sample_percentile <= 1)) {
    err << "sample_percentile: must be in (0, 1], got " << sample_percentile;
  } else if (min_rtt_interval.count() <= 0) {
    err << "min_rtt_interval: must be > 0ms";
  } else if (min_rtt_requests == 0) {
    err << "min_rtt_requests: must be >= 1";
  } else if (min_concurrency == 0 || min_concurrency > max_concurrency) {
    err << "min_concurrency: must be in [1, max_concurrency (" << max_concurrency << ")], got "
        << min_concurrency;
  } else if (!(buffer >= 0 && buffer <= 10)) {
    err << "buffer: must be in [0, 10], got " << buffer;
  }
  return err.str();
}

namespace {
const GradientConfig& checked(const GradientConfig& c) {
  if (auto err = c.validate(); !err.empty()) throw std::invalid_argument(err);
  return c;
}
}  // namespace

// The limit starts at min_concurrency while the first min RTT is measured, then grows from
// there by the gradient (doubling at most per update while latency holds).
//
//   MEASURING (limit = min_concurrency) --min_rtt_requests samples--> UPDATING
//   UPDATING --every update_interval: limit = f(gradient)--> UPDATING
//   UPDATING --min_rtt_interval passed--> MEASURING (the limit before it is restored after)
GradientController::GradientController(GradientConfig config, const Clock& clock)
    : config_(checked(config)),
      clock_(clock),
      limit_(config_.min_concurrency),
      limit_before_measuring_(config_.min_concurrency) {
  const SteadyTime now = clock_.now();
  next_update_ = now + config_.update_interval;
  next_min_rtt_ = now + config_.min_rtt_interval;
}

bool GradientController::try_acquire() {
  uint32_t cur = in_flight_.load(std::memory_order_relaxed);
  do {
    if (cur >= limit_.load(std::memory_order_relaxed)) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel,
                                             std::memory_order_relaxed));
  return true;
}

void GradientController::release(Nanos rtt, bool sample) {
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  const SteadyTime now = clock_.now();
  std::lock_guard lock(mu_);
  if (sample) samples_.push_back(rtt);
  update_locked(now);
}

Nanos GradientController::percentile_locked(double p) {
  const auto k = static_cast<std::size_t>(
      std::min<double>(static_cast<double>(samples_.size() - 1),
                       std::floor(p * static_cast<double>(samples_.size()))));
  std::nth_element(samples_.begin(), samples_.begin() + static_cast<std::ptrdiff_t>(k),
                   samples_.end());
  return samples_[k];
}

void GradientController::update_locked(SteadyTime now) {
  if (measuring_) {
    if (samples_.size() < config_.min_rtt_requests) return;
    min_rtt_ = percentile_locked(config_.sample_percentile);
    samples_.clear();
    measuring_ = false;
    next_min_rtt_ = now + config_.min_rtt_interval;
    next_update_ = now + config_.update_interval;
    limit_.store(std::max(limit_before_measuring_, config_.min_concurrency),
                 std::memory_order_relaxed);
    return;
  }
  if (now >= next_min_rtt_) {
    // Measure anew at low concurrency: the min RTT of a resource can drift (deploys, moves).
    limit_before_measuring_ = limit_.load(std::memory_order_relaxed);
    limit_.store(config_.min_concurrency, std::memory_order_relaxed);
    measuring_ = true;
    samples_.clear();
    return;
  }
  if (now < next_update_) return;
  next_update_ = now + config_.update_interval;
  if (samples_.empty()) return;
  sample_rtt_ = percentile_locked(config_.sample_percentile);
  samples_.clear();
  const double target = static_cast<double>(min_rtt_.count()) * (1.0 + config_.buffer);
  gradient_ =
      std::clamp(target / static_cast<double>(std::max<int64_t>(sample_rtt_.count(), 1)), 0.5, 2.0);
  const double limit = gradient_ * limit_.load(std::memory_order_relaxed);
  const double next = std::clamp(limit + std::sqrt(limit), double(config_.min_concurrency),
                                 double(config_.max_concurrency));
  limit_.store(static_cast<uint32_t>(next), std::memory_order_relaxed);
}

GradientSnapshot GradientController::snapshot() const {
  std::lock_guard lock(mu_);
  GradientSnapshot s;
  s.limit = limit_.load(std::memory_order_relaxed);
  s.in_flight = in_flight_.load(std::memory_order_relaxed);
  s.gradient = gradient_;
  s.min_rtt = min_rtt_;
  s.sample_rtt = sample_rtt_;
  s.measuring_min_rtt = measuring_;
  s.rejected = rejected_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace sluice::resilience
