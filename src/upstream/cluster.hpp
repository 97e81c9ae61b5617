// Cluster — an upstream cluster at run time: its resolved endpoints with their health, the load
// balancer, the retry budget, one connection pool per worker, and (optionally) the active
// health checker. Kept across reloads while its config and resolved addresses are unchanged
// (see upstreams_section.cpp), so pools and ejections survive a reload.
//
//   auto cluster = clusters.find("backend");
//   int i = cluster->pick(now, -1);
//   ConnectionPool* pool = cluster->pool();   // this worker's
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/clock.hpp"
#include "upstream/cluster_config.hpp"
#include "upstream/connection_pool.hpp"
#include "upstream/endpoint.hpp"
#include "upstream/load_balancer.hpp"
#include "upstream/retry_budget.hpp"

namespace prometheus {
class Counter;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace sluice::upstream {

class HealthChecker;

struct ClusterMetrics {
  prometheus::Counter* ejections = nullptr;
  prometheus::Counter* retries = nullptr;
  prometheus::Counter* retries_over_budget = nullptr;
  prometheus::Counter* errors = nullptr;  // 502/504 answered by the proxy
  // TLS clusters: handshakes done, full and resumed, and failed ones by reason.
  prometheus::Counter* tls_handshakes_full = nullptr;
  prometheus::Counter* tls_handshakes_resumed = nullptr;
  prometheus::Family<prometheus::Counter>* tls_handshake_errors = nullptr;
};
ClusterMetrics make_cluster_metrics(prometheus::Registry* registry, const std::string& cluster);

class Cluster {
 public:
  Cluster(ClusterConfig config, std::vector<std::unique_ptr<Endpoint>> endpoints,
          const Clock& clock, ClusterMetrics metrics,
          std::shared_ptr<const UpstreamTls> tls = nullptr);
  ~Cluster();
  // A fixed `endpoint: "host:port"` (fallback `kind: upstream`, ext_auth's `address`) as an
  // implicit cluster of one endpoint, built at config load as Envoy builds a cluster for every
  // target: the name is resolved then, once (an unknown name is a config error, as in
  // `upstreams:`). It keeps what a fixed endpoint always had: no pool (a fresh connection per
  // call), no passive ejection, no retries, no metrics. nullptr and `error` when the name does
  // not resolve.
  static std::shared_ptr<Cluster> fixed_endpoint(const std::string& text, const Clock& clock,
                                                 std::string& error);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const std::string& name() const { return config_.name; }
  const ClusterConfig& config() const { return config_; }
  const Clock& clock() const { return clock_; }
  const ClusterMetrics& metrics() const { return metrics_; }
  // Set on a TLS cluster (`tls:`): connections are HTTPS.
  const UpstreamTls* tls() const { return tls_.get(); }
  // A handshake ended: counted (full or resumed, or the failure's reason).
  void record_tls_handshake(bool resumed) const;
  void record_tls_failure(const char* reason) const;

  // TLS on a fresh connection to endpoint `conn.endpoint` of a `tls:` cluster, one code path for
  // every client of the cluster (the proxy's UpstreamCall, the shadow client): the stream with
  // the cluster's verification, SNI and session resumption, then the client handshake; `done`
  // gets its error_code. The caller checks its own state (cancelled, timed out), then
  // tls_handshake_done() says what the handshake's end means.
  template <class Handler>
  void tls_handshake(UpstreamConnection& conn, Handler&& done) const {
    conn.tls = std::make_unique<UpstreamTls::Stream>(conn.socket, tls_->context());
    tls_->prepare(conn.tls->native_handle(), conn.endpoint);
    conn.tls->async_handshake(boost::asio::ssl::stream_base::client, std::forward<Handler>(done));
  }
  struct TlsFailure {
    const char* reason;  // the sluice_upstream_tls_handshake_errors_total label
    std::string detail;  // OpenSSL's account, for the error text
  };
  // Counts the handshake (full, resumed, or its failure's reason); a failure forgets the
  // endpoint's session, so the next connection does a full handshake.
  std::optional<TlsFailure> tls_handshake_done(const UpstreamConnection& conn,
                                               const boost::system::error_code& ec) const;
  std::vector<std::unique_ptr<Endpoint>>& endpoints() { return endpoints_; }

  // The endpoint for a try, avoiding `avoid` when possible; -1 when the cluster is empty.
  int pick(SteadyTime now, int avoid) { return balancer_.pick(endpoints_, now, avoid); }
  // Whether a try counts itself in its endpoint's `active`: only where pick() reads it. Every
  // worker writes that count, so a cluster that never reads it is spared two shared writes per
  // request (issue 20).
  bool counts_in_flight() const { return balancer_.reads_in_flight(endpoints_.size()); }
  RetryBudget& budget() { return budget_; }
  bool retry_on_status(int status) const;
  // Passive health: connect failures and 5xx answers, successes reset the streak.
  void record_failure(std::size_t endpoint, SteadyTime now);
  void record_success(std::size_t endpoint) { endpoints_[endpoint]->health.record_success(); }
  // The calling worker's pool; nullptr off the worker threads and for a fixed endpoint (then
  // nothing is pooled).
  ConnectionPool* pool();
  bool pooled() const { return pooled_; }

  // Starts the active health checker when the config asks for one.
  void start_health_checks();

 private:
  ClusterConfig config_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  const Clock& clock_;
  ClusterMetrics metrics_;
  LoadBalancer balancer_;
  RetryBudget budget_;
  std::vector<std::unique_ptr<ConnectionPool>> pools_;  // by worker slot
  std::shared_ptr<const UpstreamTls> tls_;
  std::unique_ptr<HealthChecker> checker_;
  bool pooled_ = true;  // false: a fixed endpoint's implicit cluster
};

}  // namespace sluice::upstream
