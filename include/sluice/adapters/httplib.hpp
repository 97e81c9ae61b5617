// sluice::httplib_adapter — runs sluice chains (middlewares, context, observers) inside a
// cpp-httplib server, with the same order, early answers, recover and post_handle semantics as
// sluice's own server. This header does not include <httplib.h>: include it yourself, compiled
// with the flags of `pkg-config --cflags cpp-httplib` (sluice was built with them).
//
//   auto chain = std::make_shared<sluice::Chain>("api");
//   chain->use(std::make_shared<MyMiddleware>());
//   sluice::httplib_adapter::ChainRunner mw(chain);
//   server.Get("/hi", mw.wrap([](const httplib::Request&, httplib::Response& res) {
//     res.set_content("hi\n", "text/plain");
//   }));
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace sluice::httplib_adapter {

using HttplibHandler = std::function<void(const ::httplib::Request&, ::httplib::Response&)>;

// Runs one chain around cpp-httplib handlers. Thread-safe: httplib calls it from its
// connection threads; each request runs entirely on the thread that received it. Hooks that
// wait (Exchange::defer, post_after) park that thread until the request is answered; other
// requests keep running on their own threads (see docs/EMBEDDING.md).
class ChainRunner {
 public:
  // `route_name` is what observers see as ex.route()->name.
  explicit ChainRunner(std::shared_ptr<Chain> chain, std::string route_name = "httplib");

  // An httplib handler that runs the chain with `handler` as its end. The handler sees the
  // request as the middlewares left it (headers, target, body) and may read the request's
  // Context through current_exchange(). Its response (status, headers, body; not a content
  // provider) passes back through post_handle.
  HttplibHandler wrap(HttplibHandler handler) const;

  // Runs the chain with a sluice Handler as its end and writes the final response to `res`.
  void run(const ::httplib::Request& req, ::httplib::Response& res, Handler& handler) const;

  Chain& chain() const { return *chain_; }

 private:
  std::shared_ptr<Chain> chain_;
  std::shared_ptr<const RouteInfo> route_;
};

// The exchange of the request whose wrapped handler runs on this thread, or nullptr.
Exchange* current_exchange();

}  // namespace sluice::httplib_adapter
