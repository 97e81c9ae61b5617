// Conformance backends — the same Chain served by sluice's own server and by each adapter, so
// one set of tests (tests/unit/core/conformance_test.cpp) checks that every one runs middlewares
// with the same semantics.
//
//   NativeBackend backend;
//   backend.start(chain);                       // 127.0.0.1:backend.port()
//   httplib::Client c("127.0.0.1", backend.port());
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"

namespace sluice::testing {

// The steps a request went through, kept in its Context ("pre:A", "handler", "post:A").
struct Trail {
  std::vector<std::string> steps;
  std::string joined() const;
};
void add_step(Exchange& ex, std::string step);

// What the end of the chain does; every backend implements it in its own server's style:
// appends "handler" to the Trail, answers 200 "ok" with X-End-Request-Id (the Context's
// request id), X-Client-Ip and X-Seen-From-Pre (the request header X-From-Pre as the handler
// sees it), or throws when `throws`.
struct EndBehavior {
  bool throws = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual void start(std::shared_ptr<Chain> chain) = 0;
  virtual int port() const = 0;
  EndBehavior end;
};

// server::Server on a WorkerPool with a dispatcher that runs the chain (like the gateway).
std::unique_ptr<Backend> make_native_backend();
// httplib::Server with a handler wrapped by httplib_adapter::ChainRunner.
std::unique_ptr<Backend> make_httplib_backend();

}  // namespace sluice::testing
