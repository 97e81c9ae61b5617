// ClusterConfig — one upstream cluster as written under `upstreams:` in sluice.yaml, parsed and
// validated (every error with file:line:column through Settings).
//
//   upstreams:
//     backend: { endpoints: ["127.0.0.1:9000", "localhost:9001"], lb: least_request,
//                retries: { max: 2, on_status: [502, 503] }, outlier: { consecutive_failures: 5 } }
//     secure: { endpoints: ["api.internal:443"], tls: { ca_file: ca.pem } }   # HTTPS upstream
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/settings.hpp"
#include "upstream/retry_backoff.hpp"
#include "upstream/tls/upstream_tls.hpp"

namespace sluice::upstream {

enum class LbPolicy { kRoundRobin, kLeastRequest };

struct RetryPolicy {
  int max = 1;                                // retries after the first try (0: none)
  std::vector<int> on_status{502, 503, 504};  // retry when the upstream answers one of these
  double budget_percent = 20.0;  // retries in flight <= this share of requests in flight
  int min_concurrency = 3;       // ... but always at least this many
  RetryBackoff backoff;          // the wait before each retry (jittered, exponential)
};

struct OutlierPolicy {
  int consecutive_failures = 5;  // connect failures or 5xx in a row before an ejection; 0: off
  std::chrono::milliseconds base_ejection{30'000};  // doubled on each repeated ejection
  std::chrono::milliseconds max_ejection{300'000};
  int panic_threshold_percent = 50;  // below this share of healthy endpoints, use them all
};

struct HealthCheckPolicy {
  bool enabled = false;
  std::string path = "/healthz";
  std::chrono::milliseconds interval{5'000};
  std::chrono::milliseconds timeout{1'000};
  int unhealthy_threshold = 2;  // failed checks in a row before the endpoint is out
  int healthy_threshold = 1;    // passed checks in a row before it is back
};

struct ClusterConfig {
  std::string name;
  std::vector<std::string> endpoints;  // "host:port"
  LbPolicy lb = LbPolicy::kRoundRobin;
  std::chrono::milliseconds connect_timeout{1'000};
  std::chrono::milliseconds per_try_timeout{0};  // 0: only the request's deadline
  int pool_max_per_endpoint = 64;                // idle connections kept per worker and endpoint
  std::chrono::milliseconds pool_idle_timeout{30'000};
  // Answers up to buffer_response_bytes are buffered whole (middlewares' post_handle sees the
  // body; the fallback cache can keep it); larger ones are streamed to the client piece by piece.
  std::size_t buffer_response_bytes = 64 * 1024;
  std::uint64_t max_response_bytes = 0;  // 0: no limit (streamed answers need none)
  RetryPolicy retries;
  OutlierPolicy outlier;
  HealthCheckPolicy health_check;
  std::optional<UpstreamTlsSettings> tls;  // set: HTTPS to every endpoint
};

// Reads one cluster's settings; errors go to `s`.
ClusterConfig read_cluster_config(const std::string& name, Settings& s);

// Splits "host:port" / "[v6]:port"; false when malformed.
bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port);

}  // namespace sluice::upstream
