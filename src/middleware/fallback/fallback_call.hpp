// FallbackCall — the fallback middleware's per-request state (kept with InstanceState), shared
// by fallback_middleware.cpp and fallback_hedge.cpp.
#pragma once

#include <string>

#include "sluice/clock.hpp"

namespace sluice::middleware::fallback_detail {

struct FallbackCall {
  SteadyTime started{};
  bool served = false;  // a fallback answered (in recover or at a hedge's budget): post_handle
                        // leaves it alone
  bool hedged = false;  // the upstream call is the hedge's: its latency is recorded there
  // The request body as it arrived, for an `upstream` fallback: the proxy moves the body into
  // its own upstream request, so by post_handle ex.request().body() is empty.
  std::string body;
  bool kept_body = false;
};

}  // namespace sluice::middleware::fallback_detail
