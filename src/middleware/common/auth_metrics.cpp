#include "middleware/common/auth_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

namespace sluice::middleware {

AuthCounters::AuthCounters(prometheus::Registry* metrics, const std::string& type,
                           const std::string& middleware,
                           std::initializer_list<std::string_view> results) {
  if (metrics == nullptr) return;
  auto& decisions = prometheus::BuildCounter()
                        .Name("sluice_auth_decisions_total")
                        .Help("Authentication decisions by type, middleware and result")
                        .Register(*metrics);
  for (auto r : results)
    decisions_.emplace_back(
        std::string(r),
        &decisions.Add({{"type", type}, {"middleware", middleware}, {"result", std::string(r)}}));
  auto& reloads = prometheus::BuildCounter()
                      .Name("sluice_auth_file_reloads_total")
                      .Help("Reloads of key and credential files after a change, by result")
                      .Register(*metrics);
  reload_ok_ = &reloads.Add({{"type", type}, {"middleware", middleware}, {"result", "ok"}});
  reload_error_ = &reloads.Add({{"type", type}, {"middleware", middleware}, {"result", "error"}});
}

void AuthCounters::count(std::string_view result) const {
  for (const auto& [name, counter] : decisions_) {
    if (name == result) {
      counter->Increment();
      return;
    }
  }
}

void AuthCounters::file_reloaded(bool ok) const {
  auto* c = ok ? reload_ok_ : reload_error_;
  if (c != nullptr) c->Increment();
}

}  // namespace sluice::middleware
