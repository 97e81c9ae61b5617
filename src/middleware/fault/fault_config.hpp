// Reads a `fault` middleware's YAML settings into FaultMiddlewareConfig, reporting every error
// with its file position through Settings.
//
//   auto config = read_fault_config(settings);   // nullopt after reporting errors
#pragma once

#include <optional>

#include "middleware/fault/fault_middleware.hpp"
#include "sluice/settings.hpp"

namespace sluice::middleware {

std::optional<FaultMiddlewareConfig> read_fault_config(const Settings& s);

}  // namespace sluice::middleware
