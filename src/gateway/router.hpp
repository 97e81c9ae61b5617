// Router — the public listener's dispatcher: takes the current config snapshot, matches the
// route, and runs the route's chain snapshot and handler. Both snapshots are leased for the
// request's whole life, so a reload or a chain edit never changes a request in flight.
#pragma once

#include "gateway/config.hpp"
#include "server/dispatcher.hpp"
#include "sluice/snapshot_cell.hpp"

namespace sluice::gateway {

using ConfigCell = SnapshotCell<LoadedConfig>;

class Router final : public server::Dispatcher {
 public:
  explicit Router(const ConfigCell& config) : config_(config) {}
  std::unique_ptr<server::DispatchState> make_state() override;
  void dispatch(Exchange& ex, server::DispatchState* state, std::function<void()> done) override;

 private:
  const ConfigCell& config_;
};

}  // namespace sluice::gateway
