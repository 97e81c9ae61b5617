#include "sluice/clock.hpp"

namespace sluice {
namespace {
class RealSteadyClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
};
}  // namespace

const Clock& system_steady_clock() {
  static const RealSteadyClock clock;
  return clock;
}
}  // namespace sluice
