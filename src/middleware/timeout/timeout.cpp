#include "middleware/timeout/timeout.hpp"

namespace sluice::middleware {

Decision TimeoutMiddleware::pre_handle(Exchange& ex) {
  ex.context().tighten_deadline(std::chrono::steady_clock::now() + timeout_);
  return Decision::next();
}

}  // namespace sluice::middleware
