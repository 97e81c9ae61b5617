// Polls a condition until it holds or a time limit passes: the way integration tests wait for
// something the gateway does in the background (a health check, a metric, a reconnect) instead
// of sleeping a fixed time that a busy machine can overrun.
//
//   EXPECT_TRUE(eventually([&] { return handshakes() >= 3; }, 5s));
#pragma once

#include <chrono>
#include <thread>

namespace sluice::testing {

// True as soon as `pred()` holds; false if it still does not after `limit` (checked once more
// at the end, so a limit overrun by a descheduled test thread still sees the last state).
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace sluice::testing
