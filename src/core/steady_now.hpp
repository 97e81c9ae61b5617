// steady_now(): std::chrono::steady_clock::now(), read inline. libstdc++'s now() is a call into
// the shared library that makes the same clock_gettime(CLOCK_MONOTONIC) call; the request path
// reads the clock 14 times per request (one per hook for per-middleware timing), and the extra
// call layer was ≈ 10 instructions each (callgrind, bench/load/direct.yaml).
//
//   const auto t = sluice::detail::steady_now();   // same clock, same values as steady_clock
//   const auto w = sluice::detail::wall_now();     // and as system_clock
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

// std::chrono::system_clock::now() the same way (clock_gettime(CLOCK_REALTIME)): the session
// stamps each request's wall-clock start with it.
inline std::chrono::system_clock::time_point wall_now() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

}  // namespace sluice::detail
