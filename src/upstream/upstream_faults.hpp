// UpstreamFaults — the switchboard through which the `fault` middleware makes a named upstream
// cluster behave as down, and through which the proxy asks before it connects. Lives in
// GatewayServices::shared, so a fault survives reloads and is switched at run time.
//
//   auto& faults = services.shared.get_or_emplace<UpstreamFaults>();
//   faults.set("payments", {UpstreamFault::Kind::kConnectRefused});     // chaos side
//   if (auto f = faults.check("payments")) { ... behave as *f says ... }  // proxy side
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::upstream {

struct UpstreamFault {
  enum class Kind {
    kConnectRefused,  // the proxy fails as if the connect was refused (502, counts as connect
                      // error)
    kBlackHole,       // no answer: the request waits until its timeout (504)
    kStatus,          // the upstream "answers" `status` without being contacted
  };
  Kind kind = Kind::kConnectRefused;
  int status = 503;
  double percentage = 100.0;  // share of requests affected, 0..100
  std::string fault;          // the name of the fault that set it (logs, access-log detail)
  // Called by check() for every request it selects (the injecting fault's counters).
  std::function<void()> on_inject;
};

class UpstreamFaults {
 public:
  void set(const std::string& cluster, UpstreamFault fault);
  void clear(const std::string& cluster);
  // The fault to apply to this request to `cluster`, if any (the percentage is drawn here).
  // Draws are seeded: the n-th check of a cluster draws splitmix64(stream_seed(seed, cluster),
  // n), so a run with the same seed and the same request order selects the same requests.
  std::optional<UpstreamFault> check(std::string_view cluster);
  std::map<std::string, UpstreamFault> active() const;
  // The experiment seed (the fault middleware's `seed:`); restarts the draw sequences.
  void set_seed(std::uint64_t seed);

 private:
  struct Entry {
    UpstreamFault fault;
    std::uint64_t draws = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> faults_;
  std::atomic<bool> any_{false};  // fast path: no lock when nothing is injected
  std::uint64_t seed_ = 0;
};

}  // namespace sluice::upstream
