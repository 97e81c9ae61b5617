#include "upstream/cluster_config.hpp"

#include <charconv>

namespace sluice::upstream {

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return false;  // a bare IPv6 address needs brackets
  }
  unsigned value = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last || first == last || value == 0 || value > 65535)
    return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

namespace {

// A setting that switches a mechanism off leaves its other keys without effect: an error, so the
// file never claims a retry budget or an ejection time that nothing applies.
void refuse_when_off(const Settings& s, std::initializer_list<const char*> keys,
                     const std::string& off) {
  for (const char* k : keys)
    if (s.has(k)) s.error(k, "has no effect with " + off);
}

}  // namespace

ClusterConfig read_cluster_config(const std::string& name, Settings& s) {
  ClusterConfig c;
  c.name = name;
  c.endpoints = s.strings("endpoints");
  if (c.endpoints.empty()) s.error("endpoints", "a cluster needs at least one endpoint");
  for (const auto& e : c.endpoints) {
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(e, host, port))
      s.error("endpoints", "must be host:port (e.g. 127.0.0.1:9000), got \"" + e + "\"");
  }
  c.lb = s.choice("lb", {"round_robin", "least_request"}, "round_robin") == "least_request"
             ? LbPolicy::kLeastRequest
             : LbPolicy::kRoundRobin;
  c.connect_timeout = s.millis("connect_timeout_ms", c.connect_timeout);
  c.per_try_timeout = s.millis("per_try_timeout_ms", c.per_try_timeout);
  c.max_response_bytes = static_cast<std::uint64_t>(
      s.integer("max_response_bytes", static_cast<std::int64_t>(c.max_response_bytes), 0,
                std::int64_t{1} << 50));
  c.buffer_response_bytes = static_cast<std::size_t>(
      s.integer("buffer_response_bytes", static_cast<std::int64_t>(c.buffer_response_bytes), 1024,
                std::int64_t{1} << 30));

  Settings pool = s.child("pool");
  c.pool_max_per_endpoint =
      static_cast<int>(pool.integer("max_per_endpoint", c.pool_max_per_endpoint, 0, 100'000));
  c.pool_idle_timeout = pool.millis("idle_timeout_ms", c.pool_idle_timeout);
  if (c.pool_max_per_endpoint == 0)
    refuse_when_off(pool, {"idle_timeout_ms"}, "max_per_endpoint: 0 (no idle connections kept)");

  Settings retries = s.child("retries");
  c.retries.max = static_cast<int>(retries.integer("max", c.retries.max, 0, 10));
  if (retries.has("on_status")) {
    c.retries.on_status.clear();
    for (auto v : retries.integers("on_status")) {
      if (v < 100 || v > 599) retries.error("on_status", "statuses must be between 100 and 599");
      c.retries.on_status.push_back(static_cast<int>(v));
    }
  }
  c.retries.budget_percent = retries.number("budget_percent", c.retries.budget_percent, 0, 100);
  c.retries.min_concurrency =
      static_cast<int>(retries.integer("min_concurrency", c.retries.min_concurrency, 0, 1'000'000));
  auto& backoff = c.retries.backoff;
  backoff.base = retries.millis("base_interval_ms", backoff.base);
  // As Envoy: the cap defaults to ten times the base.
  backoff.max = retries.millis("max_interval_ms", backoff.base * 10);
  if (backoff.max < backoff.base)
    retries.error("max_interval_ms", "must be at least base_interval_ms (" +
                                         std::to_string(backoff.base.count()) + ")");
  if (c.retries.max == 0) {
    refuse_when_off(
        retries,
        {"on_status", "budget_percent", "min_concurrency", "base_interval_ms", "max_interval_ms"},
        "max: 0 (no retries)");
  }

  Settings outlier = s.child("outlier");
  c.outlier.consecutive_failures = static_cast<int>(
      outlier.integer("consecutive_failures", c.outlier.consecutive_failures, 0, 1'000'000));
  c.outlier.base_ejection = outlier.millis("base_ejection_ms", c.outlier.base_ejection);
  c.outlier.max_ejection = outlier.millis("max_ejection_ms", c.outlier.max_ejection);
  c.outlier.panic_threshold_percent = static_cast<int>(
      outlier.integer("panic_threshold_percent", c.outlier.panic_threshold_percent, 0, 100));
  // panic_threshold_percent stays meaningful: health checks eject endpoints too.
  if (c.outlier.consecutive_failures == 0) {
    refuse_when_off(outlier, {"base_ejection_ms", "max_ejection_ms"},
                    "consecutive_failures: 0 (no outlier ejection)");
  }

  if (s.has("health_check")) {
    Settings hc = s.child("health_check");
    auto& h = c.health_check;
    h.enabled = hc.boolean("enabled", true);
    h.path = hc.string("path", h.path);
    if (h.path.empty() || h.path[0] != '/') hc.error("path", "must start with '/'");
    h.interval = hc.millis("interval_ms", h.interval);
    h.timeout = hc.millis("timeout_ms", h.timeout);
    if (h.interval.count() <= 0) hc.error("interval_ms", "must be greater than 0");
    h.unhealthy_threshold =
        static_cast<int>(hc.integer("unhealthy_threshold", h.unhealthy_threshold, 1, 1000));
    h.healthy_threshold =
        static_cast<int>(hc.integer("healthy_threshold", h.healthy_threshold, 1, 1000));
    if (!h.enabled) {
      refuse_when_off(
          hc, {"path", "interval_ms", "timeout_ms", "unhealthy_threshold", "healthy_threshold"},
          "enabled: false (no health checks)");
    }
  }
  if (s.has("tls")) {
    Settings tls = s.child("tls");
    UpstreamTlsSettings t;
    t.ca_file = tls.string("ca_file");
    t.sni = tls.string("sni");
    if (tls.has("sni") && (t.sni.empty() || t.sni.find_first_of(" /:") != std::string::npos))
      tls.error("sni", "must be a host name (e.g. api.example.com)");
    t.cert_file = tls.string("cert_file");
    t.key_file = tls.string("key_file");
    t.min_version = tls.choice("min_version", {"1.2", "1.3"}, "1.2");
    t.session_reuse = tls.boolean("session_reuse", true);
    c.tls = t;
  }
  return c;
}

}  // namespace sluice::upstream
