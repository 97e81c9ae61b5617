// fault — injects delays, aborts, connection resets, upstream outages and slow responses into
// matching requests, by percentage, with seeded draws; switched at run time via GET/POST
// /faults on the admin listener. Meant to stay configured everywhere and be switched on for an
// experiment (see docs/CHAOS.md).
//
//   middlewares:
//     - type: fault
//       seed: 42
//       faults:
//         - { name: slow-api, percentage: 10, match: { prefix: /api }, delay: { fixed_ms: 200 } }
//         - { name: boom, enabled: false, abort: { status: 503 } }
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "middleware/fault/fault_board.hpp"
#include "middleware/fault/header_faults.hpp"
#include "sluice/exchange.hpp"

namespace sluice::middleware {

struct FaultMiddlewareConfig {
  std::uint64_t seed = 0;
  std::vector<fault::FaultSpec> faults;
  // Requests waiting on an injected delay or throttle at once; beyond it the delay is skipped
  // (and counted), so an experiment cannot pile up unbounded timers and connections.
  std::size_t max_active_delays = 10'000;
  HeaderFaultConfig headers;
};

class FaultMiddleware final : public Middleware {
 public:
  // `board` must outlive the middleware (it lives in GatewayServices::shared).
  FaultMiddleware(std::string name, FaultMiddlewareConfig config, fault::FaultBoard& board);
  ~FaultMiddleware() override;

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "fault"; }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;

  std::size_t active_delays() const { return active_->load(std::memory_order_relaxed); }

 private:
  struct Armed {
    const fault::FaultSpec* spec;
    std::shared_ptr<fault::FaultState> state;
  };
  struct Plan;

  void apply_header_faults(Exchange& ex, Plan& plan);
  bool reserve_delay_slot();
  Decision finish_pre(Exchange& ex, Plan& plan);

  std::string name_;
  FaultMiddlewareConfig config_;
  fault::FaultBoard& board_;
  std::vector<std::shared_ptr<fault::FaultState>> declared_;  // every fault, for release
  std::vector<Armed> per_request_;  // delay, abort and throttle faults (not dependency ones)
  std::shared_ptr<fault::FaultState> header_state_;
  // Shared with pending timers, which may outlive this instance after a reload.
  std::shared_ptr<std::atomic<std::size_t>> active_;
};

}  // namespace sluice::middleware
