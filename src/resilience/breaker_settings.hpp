// Reading a breaker's settings (strategy, threshold, windows, probes) from a config map: shared
// by the circuit_breaker middleware and by any middleware item's `guard:` (middleware/gate).
//
//   auto config = read_breaker_settings(s);   // errors reported through s, with positions
//   if (!config) return nullptr;
#pragma once

#include <optional>

#include "resilience/circuit_breaker.hpp"
#include "sluice/settings.hpp"

namespace sluice::resilience {

std::optional<resilience::CircuitBreakerConfig> read_breaker_settings(const Settings& s);

}  // namespace sluice::resilience
