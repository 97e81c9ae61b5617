// Detached calls — UpstreamCall without an Exchange: one try to one endpoint of a cluster on
// the calling thread's io_context, the whole answer (up to 8 MiB) handed to a callback, bounded
// by one timeout. The client of the fallback `kind: upstream`, the hedge, queue replays (a copy
// of the client's request) and ext_auth (a request it makes up).
//
// The target is a cluster's endpoint (its pool on a worker, its passive health, its TLS) or a
// fixed `endpoint: "host:port"`, which is an implicit one-endpoint cluster made at config load
// (Cluster::fixed_endpoint: resolved once, fresh connection per call, `Connection: close`).
// A pooled connection that fails before any byte of the answer is replaced once by a fresh one.
// No retries, no connect or per-try timeout, no part in the retry budget or
// sluice_upstream_errors_total; a timeout is not counted against the endpoint's health.
//
//   auto target = DetachedTarget::fixed("127.0.0.1:9000", clock, error);   // at config load
//   auto cancel = start_detached_copy(io, target, request, 300ms,
//                                     [](DetachedResult r) { if (r.ok) use(r.status, r.body); });
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
class Clock;
class Request;
}  // namespace sluice

namespace sluice::upstream {
class Cluster;
}

namespace sluice::upstream {

struct DetachedTarget {
  std::string host;  // for Host: the endpoint's address, or the fixed endpoint as written
  std::string port;
  std::shared_ptr<Cluster> cluster;  // set on every target: a real one or a fixed endpoint's
  int endpoint = -1;                 // in cluster->endpoints()

  bool empty() const { return cluster == nullptr; }
  // A fixed "host:port": its implicit cluster, resolved now. Empty and `error` set when the
  // text is not host:port or the name does not resolve.
  static DetachedTarget fixed(const std::string& text, const Clock& clock, std::string& error);
};

struct DetachedResult {
  bool ok = false;         // a complete response arrived in time
  bool timed_out = false;  // the timeout fired first
  // What went wrong, for logs and queue records: "connect: ...", "TLS handshake: ...",
  // "write: ...", "read: ...", "timed out" or "cancelled".
  std::string error;
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

// Sends a copy of `request` (method, target, every header field except hop-by-hop ones, body;
// Host set to the target). `done` runs exactly once, on `io`. The returned function aborts the
// call (then `done` gets the error "cancelled"); it must be called on `io`'s thread.
std::function<void()> start_detached_copy(boost::asio::io_context& io, const DetachedTarget& to,
                                          const Request& request, std::chrono::milliseconds timeout,
                                          std::function<void(DetachedResult)> done);

// Sends `request` the same way (Host set to the target); same contract as start_detached_copy.
std::function<void()> start_detached_call(boost::asio::io_context& io, const DetachedTarget& to,
                                          const OutgoingRequest& request,
                                          std::chrono::milliseconds timeout,
                                          std::function<void(DetachedResult)> done);

}  // namespace sluice::upstream
