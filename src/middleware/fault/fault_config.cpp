#include "middleware/fault/fault_config.hpp"

#include <spdlog/spdlog.h>
#include <random>
#include <set>

namespace sluice::middleware {

namespace {
using fault::DelaySpec;
using fault::FaultKind;
using fault::FaultSpec;
using upstream::UpstreamFault;

void read_match(const Settings& m, fault::FaultMatch& match) {
  match.prefix = m.string("prefix");
  match.exact = m.string("exact");
  match.methods = m.strings("methods");
  match.headers = m.string_map("headers");
  match.routes = m.strings("routes");
  if (!match.prefix.empty() && !match.exact.empty())
    m.error("exact", "use either prefix or exact, not both");
  for (const auto* p : {&match.prefix, &match.exact})
    if (!p->empty() && (*p)[0] != '/') m.error("", "paths must start with '/'");
}

void read_delay(const Settings& d, DelaySpec& delay) {
  const auto dist = d.choice("distribution", {"fixed", "uniform", "normal"}, "fixed");
  delay.fixed = d.millis("fixed_ms", delay.fixed);
  delay.min = d.millis("min_ms", delay.min);
  delay.max = d.millis("max_ms", delay.max);
  delay.mean = d.millis("mean_ms", delay.mean);
  delay.stddev = d.millis("stddev_ms", delay.stddev);
  delay.limit = d.millis("limit_ms", delay.limit);
  auto only = [&](std::initializer_list<const char*> keys, const std::string& why) {
    for (const char* k : {"fixed_ms", "min_ms", "max_ms", "mean_ms", "stddev_ms"}) {
      if (d.has(k) && std::find_if(keys.begin(), keys.end(), [&](const char* a) {
                        return std::string_view(a) == k;
                      }) == keys.end())
        d.error(k, "does not apply to " + why);
    }
  };
  if (dist == "fixed") {
    delay.distribution = DelaySpec::Distribution::kFixed;
    only({"fixed_ms"}, "distribution: fixed (use fixed_ms)");
    if (!d.has("fixed_ms")) d.error("fixed_ms", "a fixed delay needs fixed_ms");
  } else if (dist == "uniform") {
    delay.distribution = DelaySpec::Distribution::kUniform;
    only({"min_ms", "max_ms"}, "distribution: uniform (use min_ms and max_ms)");
    if (!d.has("max_ms") || delay.max < delay.min)
      d.error("max_ms", "a uniform delay needs max_ms >= min_ms");
  } else {
    delay.distribution = DelaySpec::Distribution::kNormal;
    only({"mean_ms", "stddev_ms"}, "distribution: normal (use mean_ms and stddev_ms)");
    if (!d.has("mean_ms")) d.error("mean_ms", "a normal delay needs mean_ms (and stddev_ms)");
  }
  if (delay.limit.count() <= 0) d.error("limit_ms", "must be greater than 0");
  if (dist == "fixed" && d.has("limit_ms"))
    d.error("limit_ms", "has no effect with distribution: fixed (only drawn delays are capped)");
  for (auto v : {delay.fixed, delay.min, delay.max, delay.mean, delay.stddev})
    if (v.count() < 0) d.error("", "delays must not be negative");
}

void read_abort(const Settings& a, fault::AbortSpec& abort) {
  abort.reset = a.boolean("reset", false);
  abort.status = static_cast<int>(a.integer("status", abort.status, 200, 599));
  abort.body = a.string("body");
  abort.content_type = a.string("content_type", abort.content_type);
  abort.headers = a.string_map("headers");
  if (abort.reset &&
      (a.has("status") || a.has("body") || a.has("headers") || a.has("content_type")))
    a.error("reset", "a reset connection sends no status, body, content_type or headers");
  else if (a.has("content_type") && abort.body.empty())
    a.error("content_type", "has no effect without body (the answer is sluice's JSON error)");
}

void read_dependency(const Settings& d, fault::DependencySpec& dep) {
  dep.cluster = d.string("cluster");
  if (dep.cluster.empty()) d.error("cluster", "name the upstream cluster to make unavailable");
  const auto mode =
      d.choice("mode", {"connect_refused", "black_hole", "status"}, "connect_refused");
  dep.fault.kind = mode == "black_hole" ? UpstreamFault::Kind::kBlackHole
                   : mode == "status"   ? UpstreamFault::Kind::kStatus
                                        : UpstreamFault::Kind::kConnectRefused;
  dep.fault.status = static_cast<int>(d.integer("status", 503, 200, 599));
  if (d.has("status") && mode != "status") d.error("status", "only applies to mode: status");
}

std::optional<FaultSpec> read_fault(Settings& f) {
  FaultSpec spec;
  spec.name = f.string("name");
  if (spec.name.empty()) f.error("name", "every fault needs a name (the admin API's handle)");
  if (spec.name == fault::FaultBoard::kHeaderFault)
    f.error("name", "\"x-sluice-fault\" is reserved for header-driven faults");
  spec.enabled = f.boolean("enabled", true);
  spec.percentage = f.number("percentage", 100.0, 0.0, 100.0);
  if (f.has("match")) read_match(f.child("match"), spec.match);

  int kinds = 0;
  if (f.has("delay")) {
    ++kinds;
    spec.kind = FaultKind::kDelay;
    read_delay(f.child("delay"), spec.delay);
  }
  if (f.has("abort")) {
    ++kinds;
    spec.kind = FaultKind::kAbort;
    read_abort(f.child("abort"), spec.abort);
  }
  if (f.has("dependency_unavailable")) {
    ++kinds;
    spec.kind = FaultKind::kDependencyUnavailable;
    read_dependency(f.child("dependency_unavailable"), spec.dependency);
    if (!spec.match.empty())
      f.error("match",
              "dependency_unavailable is cluster-wide: every call to the cluster is "
              "affected, so it takes no match");
  }
  if (f.has("throttle")) {
    ++kinds;
    spec.kind = FaultKind::kThrottle;
    auto t = f.child("throttle");
    spec.throttle.bytes_per_second =
        static_cast<std::uint64_t>(t.integer("bytes_per_second", 0, 1));
    if (!t.has("bytes_per_second")) t.error("bytes_per_second", "required");
  }
  if (kinds != 1) {
    f.error("", "a fault has exactly one of delay, abort, dependency_unavailable, throttle");
    return std::nullopt;
  }
  return spec;
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}
}  // namespace

std::optional<FaultMiddlewareConfig> read_fault_config(const Settings& s) {
  FaultMiddlewareConfig config;
  if (s.has("seed")) {
    config.seed = static_cast<std::uint64_t>(s.integer("seed", 0, 0));
  } else {
    config.seed = random_seed() & 0x7fffffffffffffffULL;  // a user can write it back in YAML
    spdlog::info("{}: fault seed {} (set seed: {} to repeat this run's draws)", s.path(),
                 config.seed, config.seed);
  }
  config.max_active_delays = static_cast<std::size_t>(
      s.integer("max_active_delays", static_cast<std::int64_t>(config.max_active_delays), 1));
  if (s.has("headers")) {
    auto h = s.child("headers");
    config.headers.enabled = h.boolean("enabled", false);
    for (const auto& cidr : h.strings("allowed_clients")) {
      if (std::string error; !config.headers.allowed_clients.add(cidr, error))
        h.error("allowed_clients", error);
    }
    config.headers.max_delay = h.millis("max_delay_ms", config.headers.max_delay);
    if (!config.headers.enabled) {
      for (const char* key : {"allowed_clients", "max_delay_ms"})
        if (h.has(key)) h.error(key, "has no effect with enabled: false (no header faults)");
    }
  }
  std::set<std::string> names;
  auto items = s.children("faults");
  for (auto& f : items) {
    auto spec = read_fault(f);
    if (!spec) continue;
    if (!names.insert(spec->name).second)
      f.error("name", "duplicate fault name \"" + spec->name + "\"");
    config.faults.push_back(std::move(*spec));
  }
  if (items.empty() && !config.headers.enabled)
    s.error("faults", "configure at least one fault (or headers: { enabled: true })");
  if (!s.ok()) return std::nullopt;
  return config;
}

}  // namespace sluice::middleware
