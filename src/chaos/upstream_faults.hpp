// UpstreamFaults — the switchboard through which the `fault` middleware makes a named upstream
// cluster behave as down, and through which the proxy asks before it connects. Lives in
// GatewayServices::shared, so a fault survives reloads and is switched at run time.
//
//   auto& faults = services.shared.get_or_emplace<chaos::UpstreamFaults>();
//   faults.set("payments", {UpstreamFault::Kind::kConnectRefused});     // chaos side
//   if (auto f = faults.check("payments")) { ... behave as *f says ... }  // proxy side
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::chaos {

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
};

class UpstreamFaults {
 public:
  void set(const std::string& cluster, UpstreamFault fault);
  void clear(const std::string& cluster);
  // The fault to apply to this request to `cluster`, if any (the percentage is drawn here).
  std::optional<UpstreamFault> check(std::string_view cluster);
  std::map<std::string, UpstreamFault> active() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, UpstreamFault, std::less<>> faults_;
  std::atomic<bool> any_{false};  // fast path: no lock when nothing is injected
  std::uint64_t draws_ = 0;
};

}  // namespace sluice::chaos
