// Head sampling decisions for new server spans: always_on, always_off, trace-id ratio, and the
// parent-based composite, configured like the OpenTelemetry SDKs (OTEL_TRACES_SAMPLER[_ARG]).
//
//   auto s = sluice::observe::Sampler::parent_based(Sampler::trace_id_ratio(0.1));
//   bool sampled = s.should_sample(incoming ? &*incoming : nullptr, trace_id);
//   auto cfg = parse_sampler("parentbased_traceidratio", "0.25");   // from the environment
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "observe/tracing/trace_context.hpp"

namespace sluice::observe {

// A small value type (no virtual calls on the request path). The root sampler applies to spans
// without a parent; in parent-based mode a remote parent's sampled flag is followed (the OTel
// defaults: sampled parent -> always_on, unsampled parent -> always_off).
class Sampler {
 public:
  enum class Kind : uint8_t { kAlwaysOn, kAlwaysOff, kTraceIdRatio };

  static Sampler always_on() { return Sampler(Kind::kAlwaysOn, 1.0, false); }
  static Sampler always_off() { return Sampler(Kind::kAlwaysOff, 0.0, false); }
  // ratio is clamped to [0, 1]; NaN counts as 0.
  static Sampler trace_id_ratio(double ratio);
  static Sampler parent_based(Sampler root);

  // `parent` is the valid incoming traceparent, or nullptr for a root span.
  bool should_sample(const TraceParent* parent, const TraceId& trace_id) const;
  // The root decision alone (what a span without parent gets).
  bool sample_root(const TraceId& trace_id) const;

  Kind kind() const { return kind_; }
  bool is_parent_based() const { return parent_based_; }
  double ratio() const { return ratio_; }
  // e.g. "ParentBased{root:TraceIdRatioBased{0.25}}", for logs and the admin API.
  std::string description() const;

 private:
  Sampler(Kind kind, double ratio, bool parent_based);
  Kind kind_;
  double ratio_;
  bool parent_based_;
  // Sampled when the trace id's randomness (its right-most 8 bytes, big-endian, shifted right by
  // one) is below ratio * 2^63: deterministic, monotonic in the ratio, and the same decision the
  // Go SDK takes, so services with the same ratio agree on which traces to keep.
  uint64_t upper_bound_;
};

// Parses OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG values. Returns nullopt with `error` set
// for an unknown sampler name or a bad ratio (the ratio must be a number in [0, 1]; an empty arg
// means 1.0, the OTel default). Names are matched case-insensitively.
std::optional<Sampler> parse_sampler(std::string_view name, std::string_view arg,
                                     std::string* error = nullptr);

// Reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG; unset => `fallback`; invalid values also
// set `error`: an unknown name gives `fallback`, a bad ratio gives ratio 1.0 (as the OTel spec
// says: warn, then behave as if unset).
Sampler sampler_from_env(Sampler fallback, std::string* error = nullptr);

}  // namespace sluice::observe
