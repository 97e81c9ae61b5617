// timeout — the route's deadline: the request must be answered within `timeout_ms` of entering
// this middleware. It only tightens the Context deadline (a caller's earlier one stays); the
// proxy honours it (504 upstream_timeout) and so do other waiting middlewares.
//
//   middlewares:
//     - type: timeout
//       timeout_ms: 2000
#pragma once

#include <chrono>
#include <string>

#include "sluice/exchange.hpp"

namespace sluice::middleware {

class TimeoutMiddleware final : public Middleware {
 public:
  TimeoutMiddleware(std::string name, std::chrono::milliseconds timeout, const Clock& clock)
      : name_(std::move(name)), timeout_(timeout), clock_(clock) {
    skip_hooks(false, true);  // no post_handle
  }

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "timeout"; }
  Decision pre_handle(Exchange& ex) override;

 private:
  std::string name_;
  std::chrono::milliseconds timeout_;
  const Clock& clock_;
};

}  // namespace sluice::middleware
