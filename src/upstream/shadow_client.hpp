// ShadowCall — one HTTP/1.1 request to an alternate upstream on the calling worker's io_context,
// bounded by a timeout: the `upstream` fallback kind's client. To a cluster endpoint it takes a
// keep-alive connection from the cluster's pool for this worker and gives it back after a
// complete answer (a fallback fires during outages, when a connection per call would add to the
// load); a pooled connection that fails before any byte of the answer is replaced once by a fresh
// one, and the endpoint's passive health counts the result. To a fixed "host:port" it uses a
// fresh connection per call. No retries.
//
//   auto cancel = start_shadow_call(io, {"127.0.0.1", "9000"}, request, 300ms,
//                                   [](ShadowResult r) { if (r.ok) use(r.status, r.body); });
//   ex.on_cancel(cancel);
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace sluice {
class Request;
}

namespace sluice::upstream {
class Cluster;
}

namespace sluice::upstream {

struct ShadowEndpoint {
  std::string host;  // a name is resolved per call; an IP address is used as is
  std::string port;
  // A cluster's endpoint (pooled connections); host/port then name the same address.
  std::shared_ptr<Cluster> cluster;
  int endpoint = -1;
};

struct ShadowResult {
  bool ok = false;         // a complete response arrived in time
  bool timed_out = false;  // the timeout fired first
  std::string error;       // what went wrong, for the log
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // hop-by-hop ones removed
  std::string body;
};

// A request the caller makes up (ext_auth's check) instead of copying the client's; no body.
struct OutgoingRequest {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends a copy of `request` (method, target, headers except hop-by-hop, body; Host set to the
// endpoint). `done` runs exactly once, on `io`. The returned function aborts the call (then
// `done` gets an error); it must be called on `io`'s thread.
std::function<void()> start_shadow_call(boost::asio::io_context& io, const ShadowEndpoint& to,
                                        const Request& request, std::chrono::milliseconds timeout,
                                        std::function<void(ShadowResult)> done);

// Sends `request` the same way (Host set to the endpoint); same contract as start_shadow_call.
std::function<void()> start_http_call(boost::asio::io_context& io, const ShadowEndpoint& to,
                                      const OutgoingRequest& request,
                                      std::chrono::milliseconds timeout,
                                      std::function<void(ShadowResult)> done);

}  // namespace sluice::upstream
