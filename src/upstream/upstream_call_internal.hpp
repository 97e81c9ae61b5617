// Small helpers shared by the files of UpstreamCall (upstream_call.cpp, _bodies.cpp, _tunnel.cpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>

#include "sluice/clock.hpp"

namespace sluice::upstream {

// The earlier of two optional deadlines (none: no deadline).
inline std::optional<SteadyTime> earliest(std::optional<SteadyTime> a,
                                          std::optional<SteadyTime> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

inline constexpr std::size_t kPieceBytes = 64 * 1024;  // a streamed answer's pieces, at most

}  // namespace sluice::upstream
