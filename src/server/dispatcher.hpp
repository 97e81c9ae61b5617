// Dispatcher — what a server does with a parsed request: the gateway's router, the admin API,
// or a test's handler. The server owns the connection; the dispatcher owns the request's fate.
#pragma once

#include <functional>
#include <memory>

#include "sluice/exchange.hpp"

namespace sluice::server {

// Per-connection scratch space of a dispatcher (e.g. the snapshot leases of the request in
// flight), created once per connection so dispatching allocates nothing.
class DispatchState {
 public:
  virtual ~DispatchState() = default;
};

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual std::unique_ptr<DispatchState> make_state() { return nullptr; }
  // Produces the response in ex.response() and calls `done` exactly once, on this worker. The
  // dispatcher is the host's side here: it drives the exchange (ExchangeDriver) to run a chain.
  virtual void dispatch(Exchange& ex, DispatchState* state, std::function<void()> done) = 0;
};

}  // namespace sluice::server
