#include "middleware/fault/fault_spec.hpp"

#include <algorithm>
#include <cmath>

#include "core/seeded_draw.hpp"

namespace sluice::middleware::fault {

namespace {
// Value draws use streams apart from the percentage draw, so adding a distribution to a fault
// does not change which requests it hits.
constexpr std::uint64_t kValueSalt1 = 0x5bd1e9955bd1e995ULL;
constexpr std::uint64_t kValueSalt2 = 0xc2b2ae3d27d4eb4fULL;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}
}  // namespace

std::string_view kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kDelay:
      return "delay";
    case FaultKind::kAbort:
      return "abort";
    case FaultKind::kDependencyUnavailable:
      return "dependency_unavailable";
    case FaultKind::kThrottle:
      return "throttle";
  }
  return "unknown";
}

std::chrono::nanoseconds DelaySpec::sample(std::uint64_t seed, std::uint64_t n) const {
  using std::chrono::duration_cast;
  using std::chrono::nanoseconds;
  double ms = 0;
  switch (distribution) {
    case Distribution::kFixed:
      return fixed;
    case Distribution::kUniform: {
      const double u = unit_draw(seed ^ kValueSalt1, n);
      ms = static_cast<double>(min.count()) + u * static_cast<double>((max - min).count());
      break;
    }
    case Distribution::kNormal: {
      // Box-Muller from two independent uniform draws of the same request index.
      const double u1 = 1.0 - unit_draw(seed ^ kValueSalt1, n);  // (0, 1]: log is finite
      const double u2 = unit_draw(seed ^ kValueSalt2, n);
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
      ms = static_cast<double>(mean.count()) + z * static_cast<double>(stddev.count());
      break;
    }
  }
  ms = std::clamp(ms, 0.0, static_cast<double>(limit.count()));
  return nanoseconds(static_cast<std::int64_t>(ms * 1e6));
}

bool FaultMatch::matches(const Request& request, std::string_view path, std::string_view method,
                         std::string_view route) const {
  if (!exact.empty() && path != exact) return false;
  if (!prefix.empty() && !path.starts_with(prefix)) return false;
  if (!methods.empty()) {
    if (std::none_of(methods.begin(), methods.end(),
                     [&](const std::string& m) { return iequals(m, method); }))
      return false;
  }
  if (!routes.empty() && std::find(routes.begin(), routes.end(), route) == routes.end())
    return false;
  for (const auto& [name, value] : headers) {
    if (value.empty() ? !request.has_header(name) : request.header(name) != value) return false;
  }
  return true;
}

}  // namespace sluice::middleware::fault
