#include "middleware/timeout/timeout.hpp"

namespace sluice::middleware {

// "Within timeout_ms of entering this middleware": entering is this hook's start, which the
// chain already read when it times hooks on the same clock (Exchange::hook_time).
Decision TimeoutMiddleware::pre_handle(Exchange& ex) {
  ex.context().tighten_deadline(ex.hook_time(clock_) + timeout_);
  return Decision::next();
}

}  // namespace sluice::middleware
