// steady_now(): std::chrono::steady_clock::now(), read inline. libstdc++'s now() is a call into
// the shared library that makes the same clock_gettime(CLOCK_MONOTONIC) call; the request path
// reads the clock 14 times per request (one per hook for per-middleware timing), and the extra
// call layer was ≈ 10 instructions each (callgrind, bench/load/direct.yaml).
//
//   const auto t = sluice::detail::steady_now();   // same clock, same values as steady_clock
//   const auto w = sluice::detail::wall_now();     // and as system_clock
//   const auto s = sluice::detail::wall_at(t);     // system_clock at t, without a read
#pragma once

#include <time.h>

#include <chrono>

namespace sluice::detail {

inline std::chrono::steady_clock::time_point steady_now() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

// std::chrono::system_clock::now() the same way (clock_gettime(CLOCK_REALTIME)).
inline std::chrono::system_clock::time_point wall_now() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

// The wall-clock time at `steady`, a steady_now() reading of this thread: steady + the offset
// between the two clocks, which this thread re-reads once a second (two reads). The session
// stamps each request's wall-clock start with it, so the request's two start times are the same
// instant and the request costs no CLOCK_REALTIME read. Both clocks are slewed alike by NTP, so
// the offset changes only when the wall clock is stepped (settimeofday, an NTP step): such a step
// shows in the stamps up to 1 s late. The offset's own error is at most half the gap between
// the steady reads around its wall read (tens of ns; a pair more than 20 µs apart is read again).
inline std::chrono::system_clock::time_point wall_at(
    std::chrono::steady_clock::time_point steady) noexcept {
  thread_local std::chrono::steady_clock::time_point refreshed{};
  thread_local std::chrono::nanoseconds offset{};
  thread_local bool have = false;
  if (!have || steady - refreshed >= std::chrono::seconds(1) || steady < refreshed) {
    // The wall read between two steady ones, against their middle. A pair far apart (the thread
    // was preempted between them) is read again, so the offset's error stays the reads' own gap.
    for (int tries = 0; tries < 3; ++tries) {
      const auto before = steady_now();
      const auto wall = wall_now();
      const auto after = steady_now();
      offset = wall.time_since_epoch() - (before.time_since_epoch() + (after - before) / 2);
      refreshed = after;
      if (after - before < std::chrono::microseconds(20)) break;
    }
    have = true;
  }
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(steady.time_since_epoch() +
                                                                      offset));
}

}  // namespace sluice::detail
