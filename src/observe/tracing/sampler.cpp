#include "observe/tracing/sampler.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace sluice::observe {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

std::optional<double> parse_ratio(std::string_view arg, std::string* error) {
  arg = trim(arg);
  if (arg.empty()) return 1.0;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), v);
  if (ec != std::errc() || ptr != arg.data() + arg.size() || !(v >= 0.0 && v <= 1.0)) {
    if (error) *error = "sampler argument \"" + std::string(arg) + "\" is not a ratio in [0, 1]";
    return std::nullopt;
  }
  return v;
}

std::string root_description(Sampler::Kind kind, double ratio) {
  switch (kind) {
    case Sampler::Kind::kAlwaysOn:
      return "AlwaysOnSampler";
    case Sampler::Kind::kAlwaysOff:
      return "AlwaysOffSampler";
    case Sampler::Kind::kTraceIdRatio:
      break;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "TraceIdRatioBased{%g}", ratio);
  return buf;
}

}  // namespace

Sampler::Sampler(Kind kind, double ratio, bool parent_based)
    : kind_(kind), ratio_(ratio), parent_based_(parent_based) {
  constexpr double kTwo63 = 9223372036854775808.0;
  upper_bound_ = ratio >= 1.0 ? (uint64_t{1} << 63) : static_cast<uint64_t>(ratio * kTwo63);
}

Sampler Sampler::trace_id_ratio(double ratio) {
  if (!(ratio > 0.0)) ratio = 0.0;  // also NaN
  if (ratio > 1.0) ratio = 1.0;
  return Sampler(Kind::kTraceIdRatio, ratio, false);
}

Sampler Sampler::parent_based(Sampler root) {
  root.parent_based_ = true;
  return root;
}

bool Sampler::sample_root(const TraceId& trace_id) const {
  switch (kind_) {
    case Kind::kAlwaysOn:
      return true;
    case Kind::kAlwaysOff:
      return false;
    case Kind::kTraceIdRatio:
      break;
  }
  uint64_t x = 0;
  for (int i = 8; i < 16; ++i)
    x = (x << 8) | trace_id.b[i];
  return (x >> 1) < upper_bound_;
}

bool Sampler::should_sample(const TraceParent* parent, const TraceId& trace_id) const {
  if (parent_based_ && parent != nullptr) return parent->sampled();
  return sample_root(trace_id);
}

std::string Sampler::description() const {
  std::string root = root_description(kind_, ratio_);
  return parent_based_ ? "ParentBased{root:" + root + "}" : root;
}

std::optional<Sampler> parse_sampler(std::string_view name, std::string_view arg,
                                     std::string* error) {
  const std::string n = lower(trim(name));
  if (n == "always_on") return Sampler::always_on();
  if (n == "always_off") return Sampler::always_off();
  if (n == "parentbased_always_on") return Sampler::parent_based(Sampler::always_on());
  if (n == "parentbased_always_off") return Sampler::parent_based(Sampler::always_off());
  if (n == "traceidratio" || n == "parentbased_traceidratio") {
    const auto ratio = parse_ratio(arg, error);
    if (!ratio) return std::nullopt;
    const Sampler s = Sampler::trace_id_ratio(*ratio);
    return n == "traceidratio" ? s : Sampler::parent_based(s);
  }
  if (error) {
    *error = "unknown sampler \"" + std::string(name) +
             "\" (expected always_on, always_off, traceidratio, parentbased_always_on, "
             "parentbased_always_off or parentbased_traceidratio)";
  }
  return std::nullopt;
}

Sampler sampler_from_env(Sampler fallback, std::string* error) {
  const char* name = std::getenv("OTEL_TRACES_SAMPLER");
  if (name == nullptr || *name == '\0') return fallback;
  const char* arg = std::getenv("OTEL_TRACES_SAMPLER_ARG");
  if (auto s = parse_sampler(name, arg ? arg : "", error)) return *s;
  // The OTel spec: an invalid ratio means the default ratio 1.0; an unknown name means unset.
  if (auto s = parse_sampler(name, "", nullptr)) return *s;
  return fallback;
}

}  // namespace sluice::observe
