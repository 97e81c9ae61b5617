// Endpoint — one upstream address of a cluster (resolved at config load) and its health as the
// proxy sees it: in-flight requests (for least-request balancing), passive outlier state
// (consecutive failures, ejections with growing backoff) and the active health-check verdict.
// Shared by all workers, so every field is atomic.
//
//   if (!ep.health.ejected(now)) ...;
//   if (ep.health.record_failure(now, policy)) spdlog::warn("ejected {}", ep.text);
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "sluice/clock.hpp"
#include "upstream/cluster_config.hpp"

namespace sluice::upstream {

// Outlier detection for one endpoint:
//
//   healthy --N consecutive failures--> ejected until now + base * 2^k (k = earlier ejections,
//      ^                                  capped at max); k resets after a quiet max_ejection)
//      +----------- the period ends (the next failure streak starts from zero) ---+
class EndpointHealth {
 public:
  // A connect failure or a 5xx answer. Returns true when this failure ejected the endpoint.
  bool record_failure(SteadyTime now, const OutlierPolicy& policy);
  void record_success() {
    if (consecutive_.load(std::memory_order_relaxed) != 0)
      consecutive_.store(0, std::memory_order_relaxed);
  }
  bool ejected(SteadyTime now) const {
    const auto until = ejected_until_.load(std::memory_order_relaxed);
    return until != 0 && now.time_since_epoch().count() < until;
  }
  int ejections() const { return ejections_.load(std::memory_order_relaxed); }

  // The active health checker's verdict (true until a checker says otherwise).
  bool check_passing() const { return check_passing_.load(std::memory_order_relaxed); }
  void set_check_passing(bool passing) { check_passing_.store(passing, std::memory_order_relaxed); }

 private:
  std::atomic<int> consecutive_{0};
  std::atomic<std::int64_t> ejected_until_{0};  // steady-clock ticks; 0: never ejected
  std::atomic<int> ejections_{0};
  std::atomic<bool> check_passing_{true};
};

struct Endpoint {
  std::string text;         // as configured: "localhost:9001"
  std::string host_header;  // Host for `host_rewrite: endpoint`
  std::string label;        // "cluster/endpoint", for Exchange::set_upstream
  boost::asio::ip::tcp::endpoint address;
  EndpointHealth health;
  // Requests in flight to this endpoint, all workers; kept only where the load balancer reads
  // it (Cluster::counts_in_flight: least request with more than one endpoint).
  std::atomic<int> active{0};
};

// Resolves "host:port" now (at config load: `upstreams:` endpoints and the fixed endpoints of
// detached calls); an IPv4 address is preferred when a name has both. nullptr and `error` set
// when the name does not resolve; nullptr alone when the text is not host:port (the caller
// checked that already).
std::unique_ptr<Endpoint> resolve_endpoint(const std::string& text, bool tls, std::string& error);

}  // namespace sluice::upstream
