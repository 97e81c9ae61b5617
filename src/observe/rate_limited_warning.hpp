// RateLimitedWarning — a warning logged at most once per 10 s, for a failing sink that fails
// every batch or call (an unreachable collector, a full disk, a down authorization service).
// Safe from any thread.
//
//   static RateLimitedWarning warn("tracing");
//   warn("collector unreachable: " + why);  // logged now, then not again for 10 s
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace sluice::observe {

class RateLimitedWarning {
 public:
  explicit RateLimitedWarning(const char* prefix) : prefix_(prefix) {}
  void operator()(const std::string& message) {
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    int64_t due = next_ns_.load(std::memory_order_relaxed);
    if (now < due || !next_ns_.compare_exchange_strong(due, now + 10'000'000'000)) return;
    spdlog::warn("{}: {}", prefix_, message);
  }

 private:
  const char* prefix_;
  std::atomic<int64_t> next_ns_{0};
};

}  // namespace sluice::observe
