// RedisStreamStorage — the `backend: redis` of a store-and-forward queue: one Redis stream that
// every sluice instance behind a balancer shares, so that a write any of them accepted is
// replayed by one of them.
//   - append: a script checks the stream's length against max_length (a full queue answers 503,
//     never trims: XADD's MAXLEN would drop the oldest undelivered writes silently) and XADDs.
//   - a consumer group per queue, each instance a consumer (`consumer`, default host-pid):
//     XREADGROUP hands out new entries in arrival order; at start an instance first reads its own
//     pending entries (a restart with the same consumer name).
//   - done: XACK + XDEL (one script). Dead letter: XADD to `<stream>:dead`, XACK, XDEL.
//   - a dead consumer's entries: XAUTOCLAIM after claim_min_idle; an instance keeps the entries it
//     holds its own by XCLAIM ... JUSTID every claim_min_idle / 3 (it resets their idle time).
//   - attempts: a hash `<stream>:attempts` (HSET per counted attempt), read with each fetch.
//   - Redis down (the connection reports an error, or a command fails): on_down kLocal appends
//     to the local spill (a LocalStorage the same replayer drains to the cluster); kReject
//     answers kUnavailable (the fallback: 503 + Retry-After). A warning and a metric each time.
// Keys: `{<prefix>:<queue>}`, `...:dead`, `...:attempts` (one hash slot).
//
//   auto s = std::make_shared<RedisStreamStorage>(options, spill, hooks);
//   StoreAndForward::open(queue_options, metrics, {s, spill});
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "queue/queue_storage.hpp"
#include "resilience/redis/redis_client.hpp"

namespace prometheus {
class Counter;
class Gauge;
}  // namespace prometheus

namespace sluice::queue {

struct RedisQueueOptions {
  resilience::redis::RedisConnectionOptions connection;
  std::string stream;  // the key; dead letters and attempts next to it
  std::string group = "sluice";
  std::string consumer;  // empty: <hostname>-<pid>
  std::chrono::milliseconds claim_min_idle{30'000};
  std::size_t max_length = 1'000'000;
  enum class OnDown { kLocal, kReject };
  OnDown on_down = OnDown::kLocal;
};

struct RedisQueueMetrics {
  prometheus::Counter* down_local = nullptr;     // appends spilled to the local log
  prometheus::Counter* down_rejected = nullptr;  // appends refused (on_redis_down: reject)
};

class RedisStreamStorage final : public QueueStorage {
 public:
  // `spill` is the local log for on_down kLocal (null with kReject). Connects at once.
  RedisStreamStorage(RedisQueueOptions options, std::string queue_name,
                     std::shared_ptr<QueueStorage> spill, RedisQueueMetrics metrics);
  ~RedisStreamStorage() override;

  const char* kind() const override { return "redis"; }
  bool shared() const override { return true; }
  bool up() const override { return up_.load(); }
  void append(const QueuedRequest& request, std::function<void(Appended)> done) override;
  void fetch(std::size_t max, std::function<void(std::vector<StoredRecord>)> done) override;
  void mark_done(std::uint64_t id) override;
  bool bury(std::uint64_t id, const DeadLetter& letter) override;
  void count_attempt(std::uint64_t id, int attempts) override;
  void hold(const std::vector<std::uint64_t>& ids) override;
  void tick() override;
  std::vector<DeadLetterView> dead_letters() override;
  std::uint64_t requeue(std::uint64_t dead_id, std::string& error) override;
  bool drop(std::uint64_t dead_id) override;
  std::size_t depth() override { return depth_.load(); }
  std::size_t dead_count() override { return dead_.load(); }
  std::uint64_t bytes() override { return 0; }

  const std::string& consumer() const { return options_.consumer; }

  // Stream ids ("<ms>-<seq>") as the queue's numeric ids, in the same order: ms << 22 | seq.
  static std::uint64_t to_id(std::string_view stream_id);
  static std::string to_stream_id(std::uint64_t id);

 private:
  struct Fetch;
  void when_down(const QueuedRequest& request, const std::string& why,
                 std::function<void(Appended)> done);
  void create_group();
  // A synchronous command for the admin API (never on the Redis thread).
  resilience::redis::RedisReply call(std::vector<std::string> argv);
  void read_more(const std::shared_ptr<Fetch>& f);
  void read_new(const std::shared_ptr<Fetch>& f);
  void read_attempts(const std::shared_ptr<Fetch>& f);

  RedisQueueOptions options_;
  std::string name_, dead_key_, attempts_key_;
  std::shared_ptr<QueueStorage> spill_;
  RedisQueueMetrics metrics_;
  std::atomic<bool> up_{true};  // until the first error: a write then waits for its own answer
  std::atomic<bool> need_group_{true};  // after each (re)connect: XGROUP CREATE (idempotent)
  std::atomic<std::size_t> depth_{0}, dead_{0};
  std::mutex mu_;          // below
  bool own_read_ = false;  // this consumer's own pending entries read once at start
  std::string claim_cursor_ = "0-0";
  std::chrono::steady_clock::time_point last_claim_{}, last_hold_{};
  bool warned_down_ = false;
  std::unique_ptr<resilience::redis::RedisClient> client_;  // last: its thread calls into us
};

}  // namespace sluice::queue
