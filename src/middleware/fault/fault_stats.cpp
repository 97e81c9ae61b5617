#include "middleware/fault/fault_stats.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

namespace sluice::middleware::fault {

FaultStatFamilies fault_stat_families(prometheus::Registry* registry) {
  if (registry == nullptr) return {};
  FaultStatFamilies f;
  f.injected = &prometheus::BuildCounter()
                    .Name("sluice_fault_injected_total")
                    .Help("Faults injected, by fault name and kind.")
                    .Register(*registry);
  f.skipped = &prometheus::BuildCounter()
                   .Name("sluice_fault_skipped_total")
                   .Help("Delay faults not applied because max_active_delays was reached.")
                   .Register(*registry);
  return f;
}

prometheus::Counter* fault_injected_series(const FaultStatFamilies& f, const std::string& fault,
                                           std::string_view kind) {
  if (f.injected == nullptr) return nullptr;
  return &f.injected->Add({{"fault", fault}, {"kind", std::string(kind)}});
}

prometheus::Counter* fault_skipped_series(const FaultStatFamilies& f, const std::string& fault) {
  if (f.skipped == nullptr) return nullptr;
  return &f.skipped->Add({{"fault", fault}});
}

}  // namespace sluice::middleware::fault
