// HealthChecker — optional active health checks of a cluster: every interval, GET `path` on each
// endpoint (own thread and io_context, so workers never wait on it). A 2xx within the timeout
// passes; `unhealthy_threshold` failures in a row take the endpoint out of balancing,
// `healthy_threshold` passes bring it back. The load balancer's panic rule still applies.
//
//   upstreams: { api: { endpoints: [...], health_check: { path: /healthz, interval_ms: 2000 } } }
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::upstream {

class Cluster;

class HealthChecker {
 public:
  explicit HealthChecker(Cluster& cluster);
  ~HealthChecker();  // stops and joins the thread
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

 private:
  void run();
  bool check_once(std::size_t endpoint);

  Cluster& cluster_;
  std::vector<int> fails_;
  std::vector<int> passes_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice::upstream
