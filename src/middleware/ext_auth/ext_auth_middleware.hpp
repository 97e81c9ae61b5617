// ext_auth — asks an authorization service about each request (like Envoy's ext_authz HTTP mode
// or Traefik's ForwardAuth): a GET to `address` + `path` carrying the chosen request headers and
// X-Forwarded-Method/-Uri/-Host/-For. A 2xx lets the request go on, with the chosen headers of
// the answer copied into it and the user/tier headers into the Context; any other 4xx (or 3xx) is
// the client's answer as the service wrote it. A connection error, a timeout or a 5xx is a
// failure: 503, or with failure_mode_allow the request goes on, marked in logs, spans and metrics.
// The call is asynchronous on the request's worker: no thread waits for the service.
//
//   - type: ext_auth
//     address: "127.0.0.1:9001"
//     path: /check
//     request_headers: [Authorization, Cookie]
//     response_headers: [X-User, X-User-Tier]
//     user_header: X-User
//     tier_header: X-User-Tier
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "middleware/common/auth_metrics.hpp"
#include "middleware/common/identity.hpp"
#include "observe/rate_limited_warning.hpp"
#include "sluice/exchange.hpp"
#include "upstream/detached_call.hpp"

namespace sluice::middleware {

struct ExtAuthConfig {
  upstream::DetachedTarget endpoint;
  std::string path = "/";
  std::chrono::milliseconds timeout{200};     // shortened to the request's deadline, if sooner
  std::vector<std::string> request_headers;   // copied from the client's request to the service
  std::vector<std::string> response_headers;  // copied from a 2xx answer into the request
  bool failure_mode_allow = false;
  Identity identity;  // user_header / tier_header: read from the service's 2xx answer
};

class ExtAuthMiddleware final : public Middleware {
 public:
  ExtAuthMiddleware(std::string name, ExtAuthConfig config, AuthCounters counters,
                    const Clock& clock)
      : name_(std::move(name)),
        config_(std::move(config)),
        counters_(std::move(counters)),
        clock_(clock) {}

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "ext_auth"; }
  Decision pre_handle(Exchange& ex) override;
  // Skipped (guard or rollout): the upstream still never sees a client's identity headers.
  void on_skipped(Exchange& ex) override { strip(ex); }

 private:
  struct Call;
  // Removes a client's copies of the headers the service speaks for.
  void strip(Exchange& ex) const;
  upstream::OutgoingRequest check_request(const Exchange& ex) const;
  // The service's answer; on the request's worker thread. Returns what the chain does next.
  Decision on_answer(Exchange& ex, upstream::DetachedResult& result) const;
  Decision on_failure(Exchange& ex, const std::string& why) const;

  std::string name_;
  ExtAuthConfig config_;
  AuthCounters counters_;
  const Clock& clock_;  // the clock of Context deadlines
  mutable observe::RateLimitedWarning warn_{"ext_auth"};
};

}  // namespace sluice::middleware
