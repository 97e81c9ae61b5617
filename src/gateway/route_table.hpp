// RouteTable — the routes of one loaded config: how a request is matched, and each route's
// chain and handler. A table is immutable once published; a reload publishes a new one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"

namespace sluice::gateway {

struct RouteMatch {
  std::string prefix;                // path prefix ("/api/"); empty with `exact` set
  std::string exact;                 // exact path
  std::vector<std::string> methods;  // empty: any
  std::string host;                  // empty: any; "*.example.com" matches subdomains
  bool matches(const Request& request) const;
};

struct MiddlewareRecord {
  std::string name;
  std::string type;
  std::string identity;  // type + canonical settings: equal identity keeps the instance on reload
};

struct Route {
  RouteInfo info;
  RouteMatch match;
  std::shared_ptr<Chain> chain;
  std::shared_ptr<Handler> handler;
  std::vector<MiddlewareRecord> middlewares;
};

class RouteTable {
 public:
  std::vector<std::shared_ptr<Route>> routes;
  const Route* match(const Request& request) const;
  const Route* find(std::string_view name) const;
};

}  // namespace sluice::gateway
