// Fault stats — the one declaration of the fault type's metric families (docs/OBSERVABILITY.md,
// "Naming"). The board (one per process) registers them; each declared fault gets its series:
//   sluice_fault_injected_total{fault,kind}   faults injected, by fault name and kind
//   sluice_fault_skipped_total{fault}         delays not applied (max_active_delays reached)
// `fault` is the fault's name (shared by every route declaring it), not the middleware's.
//
//   auto families = fault_stat_families(registry.get());
//   prometheus::Counter* c = fault_injected_series(families, "flaky", "abort");
#pragma once

#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace sluice::middleware::fault {

struct FaultStatFamilies {
  prometheus::Family<prometheus::Counter>* injected = nullptr;
  prometheus::Family<prometheus::Counter>* skipped = nullptr;
};

// Registers (or finds again) the families; `registry` may be null (all null).
FaultStatFamilies fault_stat_families(prometheus::Registry* registry);
// A fault's series; null when the families are.
prometheus::Counter* fault_injected_series(const FaultStatFamilies& f, const std::string& fault,
                                           std::string_view kind);
prometheus::Counter* fault_skipped_series(const FaultStatFamilies& f, const std::string& fault);

}  // namespace sluice::middleware::fault
