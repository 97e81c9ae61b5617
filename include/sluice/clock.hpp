// sluice::Clock — the time source of every mechanism, so tests can drive time by hand.
//
//   const sluice::Clock& clock = sluice::system_steady_clock();
//   auto t = clock.now();                   // steady time point
//   sluice::FakeClock fake; fake.advance(std::chrono::seconds(1));   // in tests
#pragma once

#include <atomic>
#include <chrono>

namespace sluice {

using SteadyTime = std::chrono::steady_clock::time_point;
using Nanos = std::chrono::nanoseconds;

// A monotonic clock. Implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
};

// The real steady clock; one process-wide instance.
const Clock& system_steady_clock();

// A clock that moves only when told to; for tests. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(SteadyTime start = SteadyTime{} + std::chrono::hours(1)) : now_(start) {}
  SteadyTime now() const override { return now_.load(std::memory_order_acquire); }
  void advance(Nanos d) { now_.store(now_.load() + d, std::memory_order_release); }
  void set(SteadyTime t) { now_.store(t, std::memory_order_release); }

 private:
  std::atomic<SteadyTime> now_;
};

}  // namespace sluice
