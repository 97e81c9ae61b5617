// "A config key with no effect is an error" (issue 17): an unknown key, or a known one that the
// other settings make ineffective, is reported with file:line:column — at the top level, in a
// section, in a middleware item, in a fallback rule, in a cluster, in listener TLS, admin and
// access_log — and a key that a factory only tested for (Settings::has) and then did not read is
// reported as having no effect.
#include <gtest/gtest.h>

#include "core/config_errors.hpp"
#include "gateway/config.hpp"

namespace sluice::gateway {
namespace {

// Every error of loading `yaml`, in file order.
std::vector<std::string> errors_of(const std::string& yaml) {
  GatewayServices services;
  return load_config_text(yaml, "t.yaml", nullptr, services).errors;
}

const std::string kRoute = "routes: [{name: r, handler: {type: echo}}]\n";

TEST(ConfigKeys, TopLevel) {
  EXPECT_EQ(errors_of("workers: 1\ndrain_timeout: 5\n" + kRoute),
            (std::vector<std::string>{
                "t.yaml:2:1: unknown key \"drain_timeout\" (did you mean \"drain_timeout_ms\"?)"}));
  EXPECT_EQ(errors_of("listen: 127.0.0.1:0\n" + kRoute), std::vector<std::string>{})
      << "listen: is read from the YAML itself, and still counts as read";
}

// A duration too large for milliseconds in 64 bits is an error, not an overflowing cast (found
// by the config fuzz target: undefined behaviour under UBSan).
TEST(ConfigKeys, AnAbsurdDurationIsAnError) {
  EXPECT_EQ(errors_of("drain_timeout_ms: \"2003330000000000000000000s\"\n" + kRoute),
            (std::vector<std::string>{"t.yaml:1:19: drain_timeout_ms: must be a duration in "
                                      "milliseconds (e.g. 250, \"250ms\", \"2s\")"}));
  EXPECT_EQ(errors_of("drain_timeout_ms: \"2s\"\n" + kRoute), std::vector<std::string>{});
}

TEST(ConfigKeys, Section) {
  EXPECT_EQ(
      errors_of("tracing: { endpoint: \"http://127.0.0.1:1\", sampler_args: 0.5 }\n" + kRoute),
      (std::vector<std::string>{"t.yaml:1:44: tracing: unknown key \"sampler_args\" (did "
                                "you mean \"sampler_arg\"?)"}));
  EXPECT_EQ(errors_of("limits: { max_conections: 5 }\n" + kRoute),
            (std::vector<std::string>{"t.yaml:1:11: limits: unknown key \"max_conections\" (did "
                                      "you mean \"max_connections\"?)"}));
}

TEST(ConfigKeys, MiddlewareItem) {
  auto errors = errors_of(R"(routes:
  - name: r
    middlewares:
      - { type: rate_limit, limits: [{rate: 1}], backend: redis, max_keys: 5,
          redis: { address: "127.0.0.1:1" } }
      - { type: concurrency_limit, max_in_flight: 1, max_wait_ms: 10, max_keys: 5 }
      - { type: circuit_breaker, threshold: 0.5, max_allowed_rt_ms: 100, ramp_start_percent: 5 }
      - { type: request_id, headr: X-Id }
    handler: { type: echo }
)");
  const std::vector<std::string> want = {
      "t.yaml:4:76: routes[0].middlewares[0].max_keys: only used with backend: local (Redis "
      "keeps the buckets, with a TTL)",
      "t.yaml:6:67: routes[0].middlewares[1].max_wait_ms: has no effect without max_queue "
      "(nothing waits)",
      "t.yaml:6:81: routes[0].middlewares[1].max_keys: has no effect without a per-client key "
      "(one limiter for the route)",
      "t.yaml:7:69: routes[0].middlewares[2].max_allowed_rt_ms: only for strategy: "
      "slow_request_ratio",
      "t.yaml:7:94: routes[0].middlewares[2].ramp_start_percent: has no effect without ramp_ms",
      "t.yaml:8:29: routes[0].middlewares[3]: unknown key \"headr\" (did you mean \"header\"?)",
  };
  EXPECT_EQ(errors, want);
}

TEST(ConfigKeys, FallbackRule) {
  auto errors = errors_of(R"(routes:
  - name: r
    middlewares:
      - type: fallback
        latency_window_ms: 5000
        snapshots: { ttl_ms: 1000 }
        fallbacks:
          - { kind: static, timeout_ms: 10, when: { statuses: [5xx] } }
    handler: { type: echo }
)");
  const std::vector<std::string> want = {
      "t.yaml:5:28: routes[0].middlewares[0].latency_window_ms: has no effect: no fallback uses "
      "route_p99_above_ms and no hedge uses p99_multiple",
      "t.yaml:6:20: routes[0].middlewares[0].snapshots: has no effect: no fallback is kind: "
      "cache_snapshot",
      "t.yaml:8:41: routes[0].middlewares[0].fallbacks[0].timeout_ms: only for kind: upstream "
      "(cache_snapshot and static answer from memory at once: there is nothing to time out)",
      "t.yaml:8:53: routes[0].middlewares[0].fallbacks[0].when: unknown key \"statuses\" (did "
      "you mean \"status\"?)",
  };
  EXPECT_EQ(errors, want);
}

// A queue answers once the write is stored; its replays have their own timeout.
TEST(ConfigKeys, QueueFallbackRefusesTimeoutMs) {
  auto errors = errors_of(R"(upstreams:
  api: { endpoints: ["127.0.0.1:9"] }
routes:
  - name: r
    middlewares:
      - type: fallback
        fallbacks:
          - kind: queue
            cluster: api
            timeout_ms: 10
            queue: { dir: /tmp/sluice-config-keys-queue }
            when: { status: [5xx] }
    handler: { type: echo }
)");
  ASSERT_EQ(errors.size(), 1u) << (errors.empty() ? "no error" : errors[0]);
  EXPECT_EQ(errors[0],
            "t.yaml:10:25: routes[0].middlewares[0].fallbacks[0].timeout_ms: only for kind: "
            "upstream (a queue answers once the write is stored; its replays are bounded by "
            "queue.replay_timeout_ms)");
}

TEST(ConfigKeys, Cluster) {
  auto errors = errors_of(R"(upstreams:
  a:
    endpoints: ["127.0.0.1:1"]
    retries: { max: 0, on_status: [503] }
    outlier: { consecutive_failures: 0, base_ejection_ms: 100 }
    pool: { max_per_endpoint: 0, idle_timeout_ms: 100 }
    health_check: { enabled: false, path: /health }
    conect_timeout_ms: 100
)" + kRoute);
  const std::vector<std::string> want = {
      "t.yaml:4:35: upstreams.a.retries.on_status: has no effect with max: 0 (no retries)",
      "t.yaml:5:59: upstreams.a.outlier.base_ejection_ms: has no effect with "
      "consecutive_failures: 0 (no outlier ejection)",
      "t.yaml:6:51: upstreams.a.pool.idle_timeout_ms: has no effect with max_per_endpoint: 0 "
      "(no idle connections kept)",
      "t.yaml:7:43: upstreams.a.health_check.path: has no effect with enabled: false (no health "
      "checks)",
      "t.yaml:8:5: upstreams.a: unknown key \"conect_timeout_ms\" (did you mean "
      "\"connect_timeout_ms\"?)",
  };
  EXPECT_EQ(errors, want);
}

// Listener TLS: the cipher list chooses TLS 1.2 suites, so it does nothing when 1.2 is refused.
TEST(ConfigKeys, ListenerTls) {
  EXPECT_EQ(errors_of(R"(listen:
  - address: 127.0.0.1:0
    tls: { cert_file: a.pem, key_file: a.key, min_version: "1.3", ciphers: "ECDHE-RSA-AES128-GCM-SHA256" }
)" + kRoute),
            (std::vector<std::string>{
                "t.yaml:3:76: listen[0].tls.ciphers: has no effect with min_version: \"1.3\" (the "
                "list chooses TLS 1.2 suites only)"}));
}

TEST(ConfigKeys, Admin) {
  EXPECT_EQ(errors_of("admin: { enabled: false, listen: \"127.0.0.1:9901\" }\n" + kRoute),
            (std::vector<std::string>{"t.yaml:1:34: admin.listen: has no effect with enabled: "
                                      "false (no admin listener)"}));
  EXPECT_EQ(errors_of("admin: { open_paths: [/healthz] }\n" + kRoute),
            (std::vector<std::string>{"t.yaml:1:22: admin.open_paths: has no effect without a "
                                      "token (every admin path is open)"}));
  EXPECT_EQ(errors_of("admin: { token: s3cret, open_paths: [/healthz] }\n" + kRoute),
            std::vector<std::string>{});
  EXPECT_EQ(errors_of("admin: { enabled: false, token: s3cret }\n" + kRoute),
            std::vector<std::string>{})
      << "a reload cannot stop a running admin listener: its token still applies";
}

TEST(ConfigKeys, AccessLog) {
  EXPECT_EQ(
      errors_of("access_log: { enabled: false, path: /tmp/a.log, queue_lines: 10 }\n" + kRoute),
      (std::vector<std::string>{
          "t.yaml:1:37: access_log.path: has no effect with enabled: false (no access log)",
          "t.yaml:1:62: access_log.queue_lines: has no effect with enabled: false (no "
          "access log)"}));
  EXPECT_EQ(errors_of("access_log: { enabled: false }\n" + kRoute), std::vector<std::string>{});
}

TEST(ConfigKeys, FaultAndHeadersItems) {
  auto errors = errors_of(R"(routes:
  - name: r
    middlewares:
      - type: fault
        seed: 1
        headers: { enabled: false, max_delay_ms: 100 }
        faults:
          - { name: a, delay: { fixed_ms: 10, limit_ms: 5 } }
          - { name: b, abort: { reset: true, content_type: text/plain } }
          - { name: c, abort: { status: 503, content_type: text/plain } }
      - { type: headers, request: { remove: [X-A, X-B], set: { x-a: "1" } } }
    handler: { type: echo }
)");
  const std::vector<std::string> want = {
      "t.yaml:6:50: routes[0].middlewares[0].headers.max_delay_ms: has no effect with enabled: "
      "false (no header faults)",
      "t.yaml:8:57: routes[0].middlewares[0].faults[0].delay.limit_ms: has no effect with "
      "distribution: fixed (only drawn delays are capped)",
      "t.yaml:9:40: routes[0].middlewares[0].faults[1].abort.reset: a reset connection sends no "
      "status, body, content_type or headers",
      "t.yaml:10:60: routes[0].middlewares[0].faults[2].abort.content_type: has no effect "
      "without body (the answer is sluice's JSON error)",
      "t.yaml:11:45: routes[0].middlewares[1].request.remove: \"X-A\" has no effect: set "
      "replaces that header anyway",
  };
  EXPECT_EQ(errors, want);
}

// The generic rule behind the targeted ones: a factory that tests for a key and then, given the
// other settings, does not read it has left it without effect.
TEST(ConfigKeys, AKeyOnlyTestedForIsReportedAsWithoutEffect) {
  ConfigErrors errors("t.yaml");
  const YAML::Node node = YAML::Load("{ mode: a, extra: 1, used: 2 }");
  Settings s = errors.settings(node, "item");
  const std::string mode = s.string("mode");
  if (s.has("extra") && mode == "b") s.integer("extra", 0);  // only meaningful in mode b
  if (s.has("used")) s.integer("used", 0);
  errors.finish();
  EXPECT_EQ(errors.all(),
            (std::vector<std::string>{
                "t.yaml:1:12: item.extra: has no effect with the other settings here"}));
}

}  // namespace
}  // namespace sluice::gateway
