// RedisStreamStorage — the `backend: redis` of a store-and-forward queue: Redis streams that every
// sluice instance behind a balancer shares, so that a write any of them accepted is replayed by
// one of them, in order per order key (docs/RESILIENCE.md, "Redis backend: partitions").
//   - partitions: the queue is N streams `<stream>:<p>`; a write goes to hash(order key) mod N
//     (writes without a key: round-robin), so that a key's writes are in one stream, in order.
//   - one owner per partition: a lease `<stream>:<p>:owner` (SET NX PX, renewed every lease / 3).
//     Only the owner reads a partition (XREADGROUP, its own consumer). An instance takes at most
//     ceil(N / live instances) partitions (live: `<stream>:members`, a heartbeat) and gives extra
//     ones back once it holds nothing of them. A new owner first takes the partition's pending
//     entries (XAUTOCLAIM from 0, idle 0: the previous owner's, in id order), then new ones.
//   - an owner that cannot renew stops sending a partition's writes half a lease before its lease
//     can expire in Redis, and hands back those it holds (still_mine / let_go).
//   - append: a script checks the streams' total length against max_length (a full queue answers
//     503, never trims: XADD's MAXLEN would drop the oldest undelivered writes silently) and XADDs.
//   - done: XACK + XDEL (one script). Dead letter: XADD to `<stream>:dead`, XACK, XDEL. The dead
//     stream keeps at most dead_max_length letters, none older than dead_max_age: each letter
//     dropped by that bound is logged (warning) and counted, never silently.
//   - attempts: a hash `<stream>:attempts` (HSET per counted attempt), read with each fetch.
//   - Redis down (the connection reports an error, or a command fails): on_down kLocal appends
//     to the local spill (a LocalStorage the same replayer drains to the cluster while Redis is
//     down); kReject answers kUnavailable (the fallback: 503 + Retry-After). A warning and a
//     metric each time. Once Redis is back the spilled writes move into the streams (in their
//     order, with their idempotency keys), so that any instance can deliver them.
// Keys: `{<prefix>:<queue>}...` (one hash slot).
// Files: redis_stream_storage.cpp (ids, append, fetch, done, the tick, the spill's move),
// redis_stream_leases.cpp (the owners), redis_stream_dead_letters.cpp (retention, admin).
//
//   auto s = std::make_shared<RedisStreamStorage>(options, "orders", spill, metrics);
//   StoreAndForward::open(queue_options, metrics, {s, spill});
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "queue/local_storage.hpp"
#include "queue/queue_storage.hpp"
#include "resilience/redis/redis_client.hpp"

namespace prometheus {
class Counter;
class Gauge;
}  // namespace prometheus

namespace sluice::queue {

struct RedisQueueOptions {
  resilience::redis::RedisConnectionOptions connection;
  std::string stream;  // the prefix of every key: partitions, dead letters, attempts, leases
  std::string group = "sluice";
  std::string consumer;  // empty: <hostname>-<pid>
  int partitions = 8;    // 1..kMaxPartitions
  std::chrono::milliseconds lease{5'000};
  std::size_t max_length = 1'000'000;  // over all partitions
  std::size_t dead_max_length = 10'000;
  std::chrono::milliseconds dead_max_age{0};  // 0: no limit
  enum class OnDown { kLocal, kReject };
  OnDown on_down = OnDown::kLocal;
};

struct RedisQueueMetrics {
  prometheus::Counter* down_local = nullptr;          // appends spilled to the local log
  prometheus::Counter* down_rejected = nullptr;       // appends refused (on_redis_down: reject)
  prometheus::Counter* dead_dropped_count = nullptr;  // dead letters over dead_max_length
  prometheus::Counter* dead_dropped_age = nullptr;    // dead letters older than dead_max_age
  prometheus::Counter* spill_moved = nullptr;         // spilled writes moved into the stream
  prometheus::Gauge* partitions_owned = nullptr;
};

class RedisStreamStorage final : public QueueStorage {
 public:
  static constexpr int kMaxPartitions = 64;

  // `spill` is the local log for on_down kLocal (null with kReject). Connects at once.
  RedisStreamStorage(RedisQueueOptions options, std::string queue_name,
                     std::shared_ptr<LocalStorage> spill, RedisQueueMetrics metrics);
  ~RedisStreamStorage() override;

  const char* kind() const override { return "redis"; }
  bool shared() const override { return true; }
  bool up() const override { return up_.load(); }
  void append(const QueuedRequest& request, std::function<void(Appended)> done) override;
  void fetch(std::size_t max, std::function<void(std::vector<StoredRecord>)> done) override;
  void mark_done(std::uint64_t id) override;
  bool bury(std::uint64_t id, const DeadLetter& letter) override;
  void count_attempt(std::uint64_t id, int attempts) override;
  void tick() override;
  bool all_mine() override;
  bool still_mine(std::uint64_t id) override;
  void let_go(std::vector<StoredRecord> records) override;
  std::vector<DeadLetterView> dead_letters() override;
  std::uint64_t requeue(std::uint64_t dead_id, std::string& error) override;
  bool drop(std::uint64_t dead_id) override;
  std::size_t depth() override { return depth_.load(); }
  std::size_t dead_count() override { return dead_.load(); }
  std::uint64_t bytes() override { return 0; }

  const std::string& consumer() const { return options_.consumer; }
  // The partitions this instance owns now.
  std::vector<int> owned() const;

  // A stream id ("<ms>-<seq>") of partition p as the queue's numeric id, in the same order
  // within the partition: (ms - 2024-01-01) << 23 | seq << 6 | p (seq: 17 bits, p: 6 bits).
  static std::uint64_t to_id(std::string_view stream_id, int partition = 0);
  static std::string to_stream_id(std::uint64_t id);
  static int partition_of(std::uint64_t id) { return static_cast<int>(id & 63); }
  // As the client sees it in X-Sluice-Queued: "<ms>-<seq>@<p>".
  static std::string label_of(std::uint64_t id);
  // The partition of an order key (FNV-1a, the same on every instance).
  static int partition_for(std::string_view order_key, int partitions);

 private:
  struct Fetch;
  struct Partition {
    std::string key, lease_key;
    bool owned = false;
    bool adopting = false;  // taking the previous owner's pending entries first
    std::string adopt_cursor = "0-0";
    bool releasing = false;  // to be given back once this instance holds nothing of it
    bool others = false;     // another instance held its lease at the last try
    std::chrono::steady_clock::time_point sendable_until{};  // half a lease before it expires
    std::size_t held = 0;                                    // records handed out, not done
  };
  void when_down(const QueuedRequest& request, const std::string& why,
                 std::function<void(Appended)> done);
  void create_groups();
  int route(const QueuedRequest& request);
  std::vector<std::string> append_argv(const std::vector<std::pair<int, std::string>>& records);
  // A synchronous command for the admin API (never on the Redis thread).
  resilience::redis::RedisReply call(std::vector<std::string> argv);
  void leases();  // on the replayer thread, every lease / 3
  void renew(int p, bool acquire);
  void release(int p);
  void read_more(const std::shared_ptr<Fetch>& f, std::size_t next_partition);
  void read_new(const std::shared_ptr<Fetch>& f);
  void read_attempts(const std::shared_ptr<Fetch>& f);
  void forget_locked(std::uint64_t id);
  void trim_dead();
  void move_spill();

  RedisQueueOptions options_;
  std::string name_, dead_key_, attempts_key_, members_key_;
  std::string owner_;  // the value of this instance's leases: <consumer>/<random>
  std::shared_ptr<LocalStorage> spill_;
  std::shared_ptr<std::atomic<bool>> spill_parked_ = std::make_shared<std::atomic<bool>>(false);
  RedisQueueMetrics metrics_;
  std::atomic<bool> up_{true};  // until the first error: a write then waits for its own answer
  std::atomic<bool> need_group_{true};  // after each (re)connect: XGROUP CREATE (idempotent)
  std::atomic<std::size_t> depth_{0}, dead_{0};
  std::atomic<unsigned> round_robin_{0};
  mutable std::mutex mu_;  // below
  std::vector<Partition> parts_;
  std::set<std::uint64_t> out_;  // records handed out, not done, buried or let go
  std::chrono::steady_clock::time_point last_lease_{}, last_trim_{};
  bool lease_round_ = false;  // a round of lease commands is under way
  int lease_rounds_ = 0;
  bool moving_ = false;  // a batch of spilled writes is on its way into the stream
  std::unique_ptr<resilience::redis::RedisClient> client_;  // last: its thread calls into us
};

}  // namespace sluice::queue
