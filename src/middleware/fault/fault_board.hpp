// FaultBoard — the runtime switchboard of named faults: each fault's on/off switch, percentage,
// seeded draw stream and counters. It lives in GatewayServices::shared, so the admin API can
// flip a fault without a reload and the state survives reloads.
//
//   auto& board = services.shared.get_or_emplace<fault::FaultBoard>(&upstreams, metrics);
//   auto state = board.declare(spec, seed);      // at config load, per middleware instance
//   board.set_enabled("slow-api", false, "admin API");
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/seeded_draw.hpp"
#include "middleware/fault/fault_spec.hpp"
#include "middleware/fault/fault_stats.hpp"
#include "upstream/upstream_faults.hpp"

namespace prometheus {
class Registry;
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace sluice::middleware::fault {

// One named fault's switch and counters. Reads on the request path are relaxed atomics.
class FaultState : public std::enable_shared_from_this<FaultState> {
 public:
  FaultState(std::string name, FaultKind kind) : name_(std::move(name)), kind_(kind) {}

  const std::string& name() const { return name_; }
  FaultKind kind() const { return kind_; }
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  double percentage() const { return percentage_.load(std::memory_order_relaxed); }
  std::uint64_t seed() const { return stream_.seed(); }

  // A matched request takes the next index of the fault's stream; `hit` says whether the
  // percentage draw selects it. The index also feeds the request's value draws (delays).
  struct Draw {
    bool hit;
    std::uint64_t index;
  };
  Draw draw() { return draw_at(percentage()); }
  // The same with a percentage of the caller's (header-driven faults carry their own).
  Draw draw_at(double percentage);
  // The fault was applied to a request of `kind` (one fault may inject several kinds: the
  // header-driven pseudo fault).
  void count_injected(FaultKind kind);
  // A hit that was not applied because too many requests were already delayed.
  void count_skipped();

  std::uint64_t matched() const { return matched_.load(std::memory_order_relaxed); }
  std::uint64_t injected() const { return injected_.load(std::memory_order_relaxed); }
  std::uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }

 private:
  friend class FaultBoard;

  const std::string name_;
  const FaultKind kind_;
  std::atomic<bool> enabled_{true};
  std::atomic<double> percentage_{100.0};
  SeededStream stream_;
  std::atomic<std::uint64_t> matched_{0};
  std::atomic<std::uint64_t> injected_{0};
  std::atomic<std::uint64_t> skipped_{0};
  prometheus::Counter* injected_metric_[4] = {};  // by FaultKind
  prometheus::Counter* skipped_metric_ = nullptr;

  // Guarded by the board's mutex.
  bool config_enabled_ = true;
  double config_percentage_ = 100.0;
  std::uint64_t config_seed_ = 0;
  int owners_ = 0;  // middleware instances that declared it
  std::optional<DependencySpec> dependency_;
};

// A read-only copy of a fault's state, for the admin API.
struct FaultView {
  std::string name;
  std::string kind;
  bool enabled;
  double percentage;
  bool configured;  // some live middleware instance declares it
  std::uint64_t matched, injected, skipped, seed;
  std::string cluster;  // dependency_unavailable only
};

class FaultBoard {
 public:
  // The name of the pseudo fault that header-driven faults count under and are switched by.
  static constexpr std::string_view kHeaderFault = "x-sluice-fault";

  // `upstreams` receives dependency_unavailable faults; `metrics` may be null (unit tests).
  FaultBoard(upstream::UpstreamFaults* upstreams, std::shared_ptr<prometheus::Registry> metrics);
  FaultBoard(const FaultBoard&) = delete;
  FaultBoard& operator=(const FaultBoard&) = delete;

  // Declares a fault for a middleware instance being built. A new name starts with the
  // config's switch, percentage and seed. For a known name, runtime changes (admin API) are
  // kept unless the config itself changed that value since the last load: an edited config is
  // the newer intent. Same name, same switch: faults named alike on several routes share it.
  std::shared_ptr<FaultState> declare(const FaultSpec& spec, std::uint64_t seed);
  // The instance that declared it is gone; a dependency fault nobody declares is lifted.
  void release(const std::shared_ptr<FaultState>& state);
  // The header-driven pseudo fault (created on first use, enabled).
  std::shared_ptr<FaultState> header_fault(std::uint64_t seed);

  // Runtime control; false when no fault has that name. Logs the change.
  bool set_enabled(std::string_view name, bool enabled, std::string_view by);
  bool set_percentage(std::string_view name, double percentage, std::string_view by);

  std::optional<FaultView> view(std::string_view name) const;
  std::vector<FaultView> list() const;
  upstream::UpstreamFaults* upstreams() const { return upstreams_; }

 private:
  std::shared_ptr<FaultState> create(const std::string& name, FaultKind kind);
  FaultView view_of(const FaultState& s) const;
  // Pushes a dependency fault's current switch to the upstream switchboard.
  void apply_dependency(FaultState& s);

  upstream::UpstreamFaults* upstreams_;
  std::shared_ptr<prometheus::Registry> metrics_;
  FaultStatFamilies stats_;  // fault_stats.hpp: the families' one declaration
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<FaultState>, std::less<>> faults_;
};

}  // namespace sluice::middleware::fault
