// TracingOptions: the `tracing:` config section merged with the OpenTelemetry environment
// variables. Precedence, per key: an explicit value in the YAML file, then the OTEL_* variable,
// then the default (the OTel rule that code/explicit configuration beats the environment, which
// beats defaults; a variable only fills what the file leaves unsaid).
//
//   tracing:
//     service_name: checkout-gw
//     endpoint: http://127.0.0.1:4318        # OTEL_EXPORTER_OTLP_ENDPOINT
//     sampler: parentbased_traceidratio      # OTEL_TRACES_SAMPLER
//     sampler_arg: 0.25                      # OTEL_TRACES_SAMPLER_ARG (alias: ratio)
//     tail_sampling: { errors: [5xx], slow_ms: 800 }   # tail_sampling.hpp
#pragma once

#include <string>
#include <vector>

#include "observe/tracing/otlp_exporter.hpp"
#include "observe/tracing/sampler.hpp"
#include "observe/tracing/tail_sampling.hpp"
#include "sluice/settings.hpp"

namespace sluice::observe {

struct TracingOptions {
  bool enabled = false;
  OtlpConfig exporter;
  Sampler sampler = Sampler::parent_based(Sampler::always_on());  // the OTel default
  bool per_middleware_spans = false;
  TailSamplingOptions tail;
  // Canonical text of the exporter settings: equal text, the same exporter is reused on reload.
  std::string exporter_key() const;
};

// Reads the section (absent: tracing off). Errors go through `s`; environment problems (an
// unknown OTEL_TRACES_SAMPLER, a malformed OTEL_RESOURCE_ATTRIBUTES) become `warnings`.
TracingOptions read_tracing_options(const Settings& s, std::vector<std::string>& warnings);

}  // namespace sluice::observe
