#include "upstream/cluster.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "server/worker_pool.hpp"
#include "upstream/health_checker.hpp"

namespace sluice::upstream {

namespace {
// Each worker thread gets a small index on first use; a cluster keeps one pool per index.
constexpr int kMaxWorkerSlots = 512;
std::atomic<int> next_slot{0};
int worker_slot() {
  thread_local int slot = -1;
  if (slot < 0) slot = next_slot.fetch_add(1);
  return slot;
}
}  // namespace

ClusterMetrics make_cluster_metrics(prometheus::Registry* registry, const std::string& cluster) {
  ClusterMetrics m;
  if (registry == nullptr) return m;
  auto counter = [&](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(*registry).Add(
        {{"cluster", cluster}});
  };
  m.ejections = counter("sluice_upstream_ejections_total",
                        "Endpoints ejected by outlier detection, per cluster");
  m.retries = counter("sluice_upstream_retries_total", "Retried upstream tries, per cluster");
  m.retries_over_budget = counter("sluice_upstream_retries_over_budget_total",
                                  "Retries refused by the retry budget, per cluster");
  m.errors = counter("sluice_upstream_errors_total",
                     "Requests the proxy answered with 502 or 504, per cluster");
  auto& handshakes = prometheus::BuildCounter()
                         .Name("sluice_upstream_tls_handshakes_total")
                         .Help("TLS handshakes with upstreams, per cluster, full or resumed")
                         .Register(*registry);
  m.tls_handshakes_full = &handshakes.Add({{"cluster", cluster}, {"resumed", "false"}});
  m.tls_handshakes_resumed = &handshakes.Add({{"cluster", cluster}, {"resumed", "true"}});
  m.tls_handshake_errors =
      &prometheus::BuildCounter()
           .Name("sluice_upstream_tls_handshake_errors_total")
           .Help("Failed TLS handshakes with upstreams, per cluster and reason")
           .Register(*registry);
  return m;
}

Cluster::Cluster(ClusterConfig config, std::vector<std::unique_ptr<Endpoint>> endpoints,
                 const Clock& clock, ClusterMetrics metrics, std::shared_ptr<const UpstreamTls> tls)
    : config_(std::move(config)),
      endpoints_(std::move(endpoints)),
      clock_(clock),
      metrics_(metrics),
      balancer_(config_.lb, config_.outlier.panic_threshold_percent),
      budget_(config_.retries.budget_percent, config_.retries.min_concurrency),
      pools_(kMaxWorkerSlots),
      tls_(std::move(tls)) {
  for (auto& ep : endpoints_)
    ep->label = config_.name + "/" + ep->text;
}

Cluster::~Cluster() = default;

std::shared_ptr<Cluster> Cluster::fixed_endpoint(const std::string& text, const Clock& clock,
                                                 std::string& error) {
  auto endpoint = resolve_endpoint(text, false, error);
  if (!endpoint) {
    if (error.empty()) error = "must be host:port, got \"" + text + "\"";
    return nullptr;
  }
  ClusterConfig config;
  config.name = text;
  config.endpoints = {text};
  config.outlier.consecutive_failures = 0;  // a fixed endpoint is never ejected
  config.retries.max = 0;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  endpoints.push_back(std::move(endpoint));
  auto cluster =
      std::make_shared<Cluster>(std::move(config), std::move(endpoints), clock, ClusterMetrics{});
  cluster->pooled_ = false;
  return cluster;
}

bool Cluster::retry_on_status(int status) const {
  const auto& s = config_.retries.on_status;
  return std::find(s.begin(), s.end(), status) != s.end();
}

void Cluster::record_failure(std::size_t endpoint, SteadyTime now) {
  auto& ep = *endpoints_[endpoint];
  if (!ep.health.record_failure(now, config_.outlier)) return;
  if (metrics_.ejections) metrics_.ejections->Increment();
  spdlog::warn("upstream {}: endpoint {} ejected after {} consecutive failures (ejection #{})",
               config_.name, ep.text, config_.outlier.consecutive_failures, ep.health.ejections());
}

void Cluster::record_tls_handshake(bool resumed) const {
  if (auto* c = resumed ? metrics_.tls_handshakes_resumed : metrics_.tls_handshakes_full)
    c->Increment();
}

void Cluster::record_tls_failure(const char* reason) const {
  if (metrics_.tls_handshake_errors)
    metrics_.tls_handshake_errors->Add({{"cluster", config_.name}, {"reason", reason}}).Increment();
}

std::optional<Cluster::TlsFailure> Cluster::tls_handshake_done(
    const UpstreamConnection& conn, const boost::system::error_code& ec) const {
  SSL* ssl = conn.tls->native_handle();
  if (!ec) {
    record_tls_handshake(SSL_session_reused(ssl) == 1);
    return std::nullopt;
  }
  const char* reason = upstream_tls_failure_reason(ssl, ec);
  record_tls_failure(reason);
  tls_->forget_session(conn.endpoint);
  return TlsFailure{reason, upstream_tls_failure_detail(ssl, ec)};
}

ConnectionPool* Cluster::pool() {
  if (!pooled_ || server::current_io_context() == nullptr) return nullptr;
  const int slot = worker_slot();
  if (slot >= kMaxWorkerSlots) return nullptr;
  auto& p = pools_[static_cast<std::size_t>(slot)];
  if (!p) {
    p = std::make_unique<ConnectionPool>(*server::current_io_context(), endpoints_.size(),
                                         config_.pool_max_per_endpoint, config_.pool_idle_timeout);
  }
  return p.get();
}

void Cluster::start_health_checks() {
  if (config_.health_check.enabled && !checker_) checker_ = std::make_unique<HealthChecker>(*this);
}

}  // namespace sluice::upstream
