// Helpers of the Redis-backed queue tests (tests/integration/queue_redis*_test.cpp): the
// gateway's config with a `kind: queue` fallback on `backend: redis`, its admin view, and the
// queue's partition streams as Redis sees them.
//
//   SluiceProcess gw(redis_queue_config(up.port(), redis.port(), ", partitions: 2", ""));
//   EXPECT_EQ(stream_length(redis, 2), 0);
#pragma once

#include <httplib.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "support/eventually.hpp"
#include "support/redis_test_server.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {

inline const httplib::Headers kQueueAdmin = {{"Authorization", "Bearer q-admin-token"}};
inline const char* kQueueStream = "{sluice:q:later}";

// `redis_extra` goes into the queue's redis: map (lease_ms is 2000 unless it says otherwise),
// `queue_extra` into queue: (lines indented by 14 spaces).
inline std::string redis_queue_config(int upstream_port, int redis_port,
                                      const std::string& redis_extra,
                                      const std::string& queue_extra) {
  return R"(
workers: 2
admin: { listen: 127.0.0.1:0, token: q-admin-token }
upstreams:
  backend:
    endpoints: ["127.0.0.1:)" +
         std::to_string(upstream_port) + R"("]
    connect_timeout_ms: 200
routes:
  - name: api
    match: { prefix: / }
    middlewares:
      - type: fallback
        fallbacks:
          - name: later
            kind: queue
            cluster: backend
            when: { upstream_error: true, status: [503] }
            queue:
              backend: redis
              backoff_base_ms: 50
              backoff_max_ms: 200
              redis: { address: "127.0.0.1:)" +
         std::to_string(redis_port) + R"(")" +
         (redis_extra.find("lease_ms") == std::string::npos ? ", lease_ms: 2000" : "") +
         redis_extra + R"( }
)" + queue_extra +
         R"(
    handler: { type: proxy, cluster: backend }
)";
}

inline nlohmann::json queue_stats(const SluiceProcess& gw) {
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/queues", kQueueAdmin);
  if (!r || r->status != 200) return nlohmann::json::object();
  auto q = nlohmann::json::parse(r->body)["queues"];
  return q.empty() ? nlohmann::json::object() : q[0];
}

inline std::string metrics_text(const SluiceProcess& gw) {
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/metrics", kQueueAdmin);
  return r ? r->body : "";
}

// Entries in every partition stream (-1 when Redis does not answer).
inline long stream_length(const RedisTestServer& redis, int partitions = 8,
                          const std::string& auth = "") {
  long n = 0;
  for (int p = 0; p < partitions; ++p) {
    const std::string s =
        redis.command({"XLEN", std::string(kQueueStream) + ":" + std::to_string(p)}, auth);
    if (s.empty() || s[0] < '0' || s[0] > '9') return -1;
    n += std::stol(s);
  }
  return n;
}

// Entries delivered to a consumer and not acknowledged, over every partition.
inline long pending_count(const RedisTestServer& redis, int partitions = 8) {
  long n = 0;
  for (int p = 0; p < partitions; ++p) {
    const std::string s =
        redis.command({"XPENDING", std::string(kQueueStream) + ":" + std::to_string(p), "sluice"});
    if (s.empty() || s[0] < '0' || s[0] > '9') return -1;
    n += std::stol(s.substr(0, s.find(' ')));
  }
  return n;
}

}  // namespace sluice::testing
