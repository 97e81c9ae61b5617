// InjectedFaults — the per-request record of the faults injected into it, in a Context typed
// slot, for observers: the tracing observer adds them as span attributes (`fault.name`,
// `fault.kind`, `fault.delay_ms`); the access log reads Exchange::detail(), which the fault
// middleware sets to "fault_abort", "fault_reset", "fault_delay" or "fault_throttle".
//
//   if (auto* f = ex.context().get<fault::InjectedFaults>())
//     for (const auto& i : f->list) span.attribute("fault.name", i.name);
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "middleware/fault/fault_spec.hpp"

namespace sluice::middleware::fault {

struct InjectedFault {
  std::string name;  // the fault's name, or "x-sluice-fault" for header-driven faults
  FaultKind kind;
  std::chrono::nanoseconds delay{0};  // delay and throttle: how long the request waited
  int status = 0;                     // abort: the status answered (0 for a reset)
};

struct InjectedFaults {
  std::vector<InjectedFault> list;
};

}  // namespace sluice::middleware::fault
