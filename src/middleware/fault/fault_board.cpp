#include "middleware/fault/fault_board.hpp"

#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include "middleware/fault/fault_stats.hpp"

namespace sluice::middleware::fault {

namespace {
constexpr FaultKind kKinds[] = {FaultKind::kDelay, FaultKind::kAbort,
                                FaultKind::kDependencyUnavailable, FaultKind::kThrottle};
}

// ---- FaultState -----------------------------------------------------------------------------

FaultState::Draw FaultState::draw_at(double pct) {
  matched_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t n = stream_.next_index();
  const bool hit = pct >= 100.0 || (pct > 0.0 && unit_draw(stream_.seed(), n) * 100.0 < pct);
  return {hit, n};
}

void FaultState::count_injected(FaultKind kind) {
  injected_.fetch_add(1, std::memory_order_relaxed);
  if (auto* c = injected_metric_[static_cast<int>(kind)]) c->Increment();
}

void FaultState::count_skipped() {
  skipped_.fetch_add(1, std::memory_order_relaxed);
  if (skipped_metric_ != nullptr) skipped_metric_->Increment();
}

// ---- FaultBoard -----------------------------------------------------------------------------

FaultBoard::FaultBoard(upstream::UpstreamFaults* upstreams,
                       std::shared_ptr<prometheus::Registry> metrics)
    : upstreams_(upstreams), metrics_(std::move(metrics)) {
  stats_ = fault_stat_families(metrics_.get());
}

std::shared_ptr<FaultState> FaultBoard::create(const std::string& name, FaultKind kind) {
  auto state = std::make_shared<FaultState>(name, kind);
  if (stats_.injected != nullptr) {
    for (FaultKind k : kKinds) {
      // Declared eagerly for the fault's own kind so the series exist (at 0) before the first
      // injection; the header pseudo fault injects several kinds.
      if (k == kind || name == kHeaderFault) {
        state->injected_metric_[static_cast<int>(k)] =
            fault_injected_series(stats_, name, kind_name(k));
      }
    }
    if (kind == FaultKind::kDelay || kind == FaultKind::kThrottle || name == kHeaderFault)
      state->skipped_metric_ = fault_skipped_series(stats_, name);
  }
  faults_.emplace(name, state);
  return state;
}

std::shared_ptr<FaultState> FaultBoard::declare(const FaultSpec& spec, std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  auto it = faults_.find(spec.name);
  std::shared_ptr<FaultState> s;
  const bool fresh = it == faults_.end() || it->second->kind() != spec.kind;
  if (fresh) {
    if (it != faults_.end()) faults_.erase(it);  // renamed kind: a different fault now
    s = create(spec.name, spec.kind);
    s->enabled_.store(spec.enabled);
    s->percentage_.store(spec.percentage);
    s->stream_.reseed(stream_seed(seed, spec.name));
  } else {
    s = it->second;
    if (s->config_enabled_ != spec.enabled && s->enabled() != spec.enabled) {
      s->enabled_.store(spec.enabled);
      spdlog::info("fault {}: {} by the config", spec.name,
                   spec.enabled ? "switched on" : "switched off");
    }
    if (s->config_percentage_ != spec.percentage) s->percentage_.store(spec.percentage);
    if (s->config_seed_ != seed) s->stream_.reseed(stream_seed(seed, spec.name));
  }
  s->config_enabled_ = spec.enabled;
  s->config_percentage_ = spec.percentage;
  s->config_seed_ = seed;
  ++s->owners_;
  if (spec.kind == FaultKind::kDependencyUnavailable) {
    if (s->dependency_ && s->dependency_->cluster != spec.dependency.cluster && upstreams_)
      upstreams_->clear(s->dependency_->cluster);
    s->dependency_ = spec.dependency;
    if (upstreams_ != nullptr) upstreams_->set_seed(seed);
    apply_dependency(*s);
  }
  if (fresh && spec.enabled) {
    spdlog::info("fault {} ({}): on at {}%", spec.name, kind_name(spec.kind), spec.percentage);
  }
  return s;
}

void FaultBoard::release(const std::shared_ptr<FaultState>& state) {
  std::lock_guard lock(mutex_);
  if (--state->owners_ > 0) return;
  if (state->dependency_) apply_dependency(*state);
}

std::shared_ptr<FaultState> FaultBoard::header_fault(std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  const std::string name(kHeaderFault);
  auto it = faults_.find(name);
  if (it != faults_.end()) return it->second;
  auto s = create(name, FaultKind::kDelay);
  s->stream_.reseed(stream_seed(seed, name));
  return s;
}

void FaultBoard::apply_dependency(FaultState& s) {
  if (upstreams_ == nullptr || !s.dependency_) return;
  const auto& dep = *s.dependency_;
  if (!s.enabled() || s.owners_ <= 0) {
    upstreams_->clear(dep.cluster);
    return;
  }
  upstream::UpstreamFault f = dep.fault;
  f.percentage = s.percentage();
  f.fault = s.name();
  f.on_inject = [weak = s.weak_from_this()] {
    if (auto state = weak.lock()) state->count_injected(FaultKind::kDependencyUnavailable);
  };
  upstreams_->set(dep.cluster, std::move(f));
}

bool FaultBoard::set_enabled(std::string_view name, bool enabled, std::string_view by) {
  std::lock_guard lock(mutex_);
  auto it = faults_.find(name);
  if (it == faults_.end()) return false;
  FaultState& s = *it->second;
  const bool was = s.enabled_.exchange(enabled);
  if (s.dependency_) apply_dependency(s);
  spdlog::info("fault {} ({}): switched {} by {}{}", s.name(), kind_name(s.kind()),
               enabled ? "on" : "off", by, was == enabled ? " (no change)" : "");
  return true;
}

bool FaultBoard::set_percentage(std::string_view name, double percentage, std::string_view by) {
  std::lock_guard lock(mutex_);
  auto it = faults_.find(name);
  if (it == faults_.end()) return false;
  FaultState& s = *it->second;
  s.percentage_.store(percentage);
  if (s.dependency_) apply_dependency(s);
  spdlog::info("fault {} ({}): percentage set to {} by {}", s.name(), kind_name(s.kind()),
               percentage, by);
  return true;
}

FaultView FaultBoard::view_of(const FaultState& s) const {
  return {s.name(),
          s.name() == kHeaderFault ? std::string("header") : std::string(kind_name(s.kind())),
          s.enabled(),
          s.percentage(),
          s.owners_ > 0 || s.name() == kHeaderFault,
          s.matched(),
          s.injected(),
          s.skipped(),
          s.seed(),
          s.dependency_ ? s.dependency_->cluster : std::string()};
}

std::optional<FaultView> FaultBoard::view(std::string_view name) const {
  std::lock_guard lock(mutex_);
  auto it = faults_.find(name);
  if (it == faults_.end()) return std::nullopt;
  return view_of(*it->second);
}

std::vector<FaultView> FaultBoard::list() const {
  std::lock_guard lock(mutex_);
  std::vector<FaultView> out;
  for (const auto& [name, s] : faults_)
    out.push_back(view_of(*s));
  return out;
}

}  // namespace sluice::middleware::fault
