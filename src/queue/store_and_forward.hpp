// StoreAndForward — a durable queue of writes and its replayer: the `queue` fallback kind's
// mechanism (see middleware/fallback/fallback_queue.cpp). enqueue() stores a request in its
// QueueStorage (queue_storage.hpp: a segment log on disk, or a Redis stream shared by every
// instance) and says so through its callback; a thread of its own replays the records it
// fetches from its storages through the Sender — to the cluster they were meant for — once it
// answers:
//
//   - in arrival order: requests are sent in id order; requests with the same non-empty
//     order_key one at a time, each after the previous one is done (or dead); without a key, up
//     to `concurrency` at once (strict order across keys only with concurrency: 1);
//   - a 1xx-3xx answer: done (a done-mark in the log); a 4xx other than 408/429: final, a dead
//     letter with the answer; a 5xx, 408, 429 or a timeout: an attempt, retried after a backoff
//     (exponential with jitter, at least the answer's Retry-After seconds); after max_attempts,
//     a dead letter; the cluster unreachable (no endpoint, connection refused): not an attempt,
//     the outage goes on;
//   - after a failure, one request at a time (a probe) until one succeeds;
//   - requests older than max_age become dead letters ("expired"), never dropped silently.
// Dead letters are kept by the storage (a second log `<dir>/dead`, or a second stream) until
// requeued or dropped.
//
//   auto q = StoreAndForward::open(options, metrics, error);   // the local log in options.log.dir
//   q->set_sender(send);                       // re-bound on every config load
//   q->enqueue(request, [](Appended a) { ... });   // a.id, or a.error (full / io / unavailable)
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "queue/queue_storage.hpp"
#include "queue/queued_request.hpp"
#include "queue/segment_log.hpp"
#include "server/worker_pool.hpp"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace sluice::queue {

struct QueueOptions {
  std::string name;
  LogOptions log;  // log.dir holds the segments, log.dir + "/dead" the dead letters
  std::chrono::milliseconds fsync_interval{50};  // with FsyncPolicy::kInterval
  int concurrency = 16;
  // Replays started per second (0: no limit), so that a drain cannot crowd out live traffic on
  // an upstream that is just back; bursts of up to a 20th of a second's worth.
  double max_rate = 0;
  int max_attempts = 10;
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_max{2000};
  std::chrono::milliseconds replay_timeout{10'000};
  std::chrono::milliseconds max_age{0};  // 0: no limit
  // A shared storage (redis) is asked for records this often, and holds at most this many.
  std::chrono::milliseconds poll_interval{100};
  std::size_t max_held = 256;
  std::string backend = "local";  // what the storage is, for reloads: "local", "redis <stream>"
};

// sluice_queue_* for one queue; any may be null.
struct QueueMetrics {
  prometheus::Gauge* depth = nullptr;
  prometheus::Gauge* oldest_age = nullptr;
  prometheus::Gauge* bytes = nullptr;
  prometheus::Gauge* dead_letters = nullptr;
  prometheus::Counter* enqueued = nullptr;
  prometheus::Counter* replayed_done = nullptr;
  prometheus::Counter* replayed_retry = nullptr;
  prometheus::Counter* replayed_unreachable = nullptr;
  prometheus::Counter* replayed_dead = nullptr;
  prometheus::Histogram* drain_seconds = nullptr;
  prometheus::Gauge* backend_up = nullptr;  // redis: 1 while Redis answers
};

struct ReplayAnswer {
  enum class Kind { kAnswered, kUnreachable, kTimedOut, kError };
  Kind kind = Kind::kUnreachable;
  int status = 0;
  std::string retry_after;  // the answer's Retry-After
  std::string body;
  std::string error;
};
using ReplayDone = std::function<void(ReplayAnswer)>;
// Sends one replay (with Idempotency-Key) and calls `done` once, on `io`, never inline.
using Sender = std::function<void(boost::asio::io_context& io, std::uint64_t id,
                                  const QueuedRequest& request, int attempt, ReplayDone done)>;

struct QueueStats {
  std::string name, dir, state;  // state: idle, replaying, waiting, paused
  std::string backend;           // local, redis
  bool backend_up = true;
  std::size_t depth = 0, in_flight = 0, dead_letters = 0;
  std::uint64_t bytes = 0;
  double oldest_age_seconds = 0;
  double backoff_seconds = 0;      // until the next try, while waiting
  double last_drain_seconds = -1;  // the last drain's duration (-1: none yet)
  std::uint64_t enqueued = 0, delivered = 0, retried = 0, dead = 0;
};

class StoreAndForward {
 public:
  // Opens (and recovers) the logs and starts the replayer thread; nullptr and `error` set when
  // the directory cannot be used. Recovery warnings go to the log (spdlog).
  static std::shared_ptr<StoreAndForward> open(QueueOptions options, QueueMetrics metrics,
                                               std::string& error);
  // With storages made by the caller: enqueue() goes to the first; records are fetched from all
  // (a Redis queue's second one is its local spill).
  static std::shared_ptr<StoreAndForward> open(QueueOptions options, QueueMetrics metrics,
                                               std::vector<std::shared_ptr<QueueStorage>> storages);
  ~StoreAndForward();
  StoreAndForward(const StoreAndForward&) = delete;
  StoreAndForward& operator=(const StoreAndForward&) = delete;

  void set_sender(Sender sender);
  // The options a reload may change (not the directory, limits of the open log stay).
  void set_options(const QueueOptions& options);

  // Stores the request; `done` once: on this thread before enqueue returns (local), or later on
  // another thread (redis).
  void enqueue(QueuedRequest request, std::function<void(Appended)> done);
  // True when enqueue() answers later (a shared storage): the request must wait for it.
  bool answers_later() const { return storages_.front()->shared(); }

  void pause();
  void resume();
  void drain();  // try now: ends a backoff at once
  QueueStats stats();
  std::vector<DeadLetterView> dead_letters();
  // Puts a dead letter back at the end of the queue (a new id, the same idempotency key);
  // the new id, or 0 when there is no such dead letter or the queue cannot take it.
  std::uint64_t requeue(std::uint64_t dead_id, std::string& error);
  bool drop(std::uint64_t dead_id);
  const QueueOptions& options() const { return options_; }

 private:
  StoreAndForward(QueueOptions options, QueueMetrics metrics);
  struct Entry {
    std::shared_ptr<const QueuedRequest> request;
    int attempts = 0;
    bool in_flight = false;
    QueueStorage* from = nullptr;
  };
  void fetch_from(std::size_t index);  // on the replayer thread, without mu_
  void take(std::size_t index, std::vector<StoredRecord> records);
  // Hands held records their storage no longer lets this instance send back to it.
  void let_go_lost();
  // replayer.cpp — every function runs on the replayer thread.
  void pump();
  void on_answer(std::uint64_t id, ReplayAnswer answer);
  void tick();
  void schedule_pump_at(std::chrono::steady_clock::time_point when);
  // Under mu_: ends the drain (its duration logged and observed) once nothing is left.
  void end_drain_locked(std::chrono::steady_clock::time_point now);
  std::chrono::milliseconds backoff_for(int failures, std::string_view retry_after);
  // Under mu_: moves a pending entry to the dead letters; false when they cannot be written.
  bool kill_locked(std::uint64_t id, Entry& e, std::string reason, int status, std::string answer);
  void update_gauges_locked();
  void post(std::function<void()> f);

  QueueOptions options_;
  QueueMetrics metrics_;
  // The replayer's thread: a one-thread server::WorkerPool, so that the cluster keeps a
  // keep-alive connection pool for it (Cluster::pool() is per worker thread). Stopped with the
  // queue but never deleted: that pool, owned by the cluster, holds sockets on its io_context.
  server::WorkerPool* thread_ = nullptr;
  boost::asio::io_context* io_ = nullptr;
  std::unique_ptr<boost::asio::steady_timer> pump_timer_, tick_timer_;

  std::vector<std::shared_ptr<QueueStorage>> storages_;  // set before the thread starts

  std::mutex mu_;                           // everything below
  std::map<std::uint64_t, Entry> pending_;  // held records by id: arrival order
  std::vector<bool> fetch_due_, fetching_;  // per storage
  std::vector<std::size_t> held_;           // per storage: records in pending_
  Sender sender_;
  std::size_t in_flight_ = 0;
  bool paused_ = false;
  bool probing_ = false;  // after a failure: one at a time until a success
  int failures_ = 0;      // consecutive
  std::chrono::steady_clock::time_point retry_at_{};
  double tokens_ = 0;  // of max_rate
  std::chrono::steady_clock::time_point tokens_at_{};
  std::optional<std::chrono::steady_clock::time_point> drain_started_;
  double last_drain_seconds_ = -1;
  std::uint64_t enqueued_ = 0, delivered_ = 0, retried_ = 0, dead_total_ = 0;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace sluice::queue
