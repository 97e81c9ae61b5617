// The `queue` fallback kind: store and forward. When its `when:` matches a write (POST, PUT,
// PATCH, DELETE by default; never GET or HEAD), the request — method, target, end-to-end
// headers, body — is appended to a durable queue (queue/store_and_forward.hpp) before the
// client gets `202 Accepted` with `X-Sluice-Queued: <id>` and `Idempotency-Key: <key>`; the
// queue replays it to `cluster` once that answers again. The key is the client's Idempotency-Key,
// or one sluice generates (in pre_handle, so the first try carries it too); every replay sends
// it. A queue that cannot take the write (full, or its disk) answers 503 with Retry-After. A body
// over max_body_bytes, or a streamed one, is not queued: the next matching fallback answers, or
// the failure itself does (docs/RESILIENCE.md).
//
//   - type: fallback
//     fallbacks:
//       - name: later
//         kind: queue
//         cluster: orders
//         when: { upstream_error: true, breaker_open: true, status: [502, 503, 504] }
//         queue: { dir: /var/lib/sluice/orders, fsync: always, order_by: header,
//                  order_header: X-Account, max_attempts: 10 }
// With `backend: redis` every instance shares one queue (a Redis stream; dir: is then the local
// log used while Redis is down, on_redis_down: local):
//         queue: { backend: redis, dir: /var/lib/sluice/orders-spill,
//                  redis: { address: "10.0.0.5:6379", on_redis_down: local } }
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "queue/redis_stream_storage.hpp"
#include "queue/store_and_forward.hpp"
#include "sluice/registry.hpp"
#include "sluice/settings.hpp"

namespace prometheus {
class Registry;
}

namespace sluice {
struct GatewayServices;
}

namespace sluice::middleware {

struct FallbackSpec;

struct QueueFallback {
  std::shared_ptr<queue::StoreAndForward> store;  // null when not opened (the config has errors)
  queue::QueueOptions options;
  queue::RedisQueueOptions redis;  // backend: redis
  std::vector<std::string> methods{"POST", "PUT", "PATCH", "DELETE"};
  std::size_t max_body = 1 << 20;
  enum class OrderBy { kNone, kHeader, kClient, kPath };
  OrderBy order_by = OrderBy::kNone;
  std::string order_header;
  int retry_after_s = 5;      // with a 503 when the queue cannot take a write
  std::string accepted_body;  // the 202's body; empty: {"queued":"<id>","idempotency_key":...}
};

// Every queue of the process by name, kept across reloads (GatewayServices::shared): a reload
// with the same name and dir keeps the queue, its pending writes and its replayer.
struct QueueRegistry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<queue::StoreAndForward>> by_name;
};

// The process's QueueRegistry, created on first use: for the config loader (control plane).
std::shared_ptr<QueueRegistry> shared_queue_registry(GatewayServices& services);
// The registry if a queue was ever configured, else null; callable from any thread. The admin
// API runs on its own thread while a reload may be adding slots to services.shared (a vector),
// so it finds the registry here instead of reading (or, before the first queue, adding) a slot.
std::shared_ptr<QueueRegistry> find_queue_registry(GatewayServices& services);

// Reads `cluster:` and `queue:` of a `kind: queue` fallback into `f` and opens (or reuses) its
// queue; errors go through `item`.
void read_queue_fallback(const Settings& item, const MiddlewareSpec& spec, FallbackSpec& f,
                         prometheus::Registry* metrics);

}  // namespace sluice::middleware
