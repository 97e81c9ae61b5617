// The `tracing:` config section (off unless configured). See tracing_options.hpp for the keys
// and how they merge with the OTEL_* environment variables, docs/OBSERVABILITY.md for the rest.
#include <spdlog/spdlog.h>

#include "observe/tracing/exporter_pool.hpp"
#include "observe/tracing/tracing_observer.hpp"
#include "observe/tracing/tracing_options.hpp"
#include "sluice/extension/config_section.hpp"

namespace sluice::observe {
namespace {

const extension::ConfigSectionRegistrar section("tracing", [](Settings& s, ConfigBuild& config,
                                                              GatewayServices& services) {
  std::vector<std::string> warnings;
  TracingOptions options = read_tracing_options(s, warnings);
  for (const auto& w : warnings)
    spdlog::warn("tracing: {}", w);
  auto& pool = ExporterPool::of(services);
  pool.reap();  // exporters of configs released since the last load
  if (!options.enabled || !s.ok()) return;
  auto exporter = pool.get(options.exporter, options.exporter_key());
  config.observers.push_back(
      std::make_shared<TracingObserver>(options.sampler, exporter, options.per_middleware_spans));
  spdlog::info("tracing: spans to {} (service {}, sampler {})", exporter->url(),
               options.exporter.service_name, options.sampler.description());
});

}  // namespace
}  // namespace sluice::observe
