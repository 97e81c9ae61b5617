// QueueStorage — where the writes of a store-and-forward queue live until they are done: the
// one interface the replayer (store_and_forward.hpp) uses, so that both backends share it.
//   - LocalStorage (local_storage.hpp): a segment log on this machine's disk; every record is
//     this instance's to replay.
//   - RedisStreamStorage (redis_stream_storage.hpp): a Redis stream with a consumer group that
//     every instance shares; a record is replayed by the instance that read (or claimed) it.
// The replayer learns of records only through fetch(), whichever instance stored them.
//
//   storage.append(request, [](Appended a) { if (a.id == 0) refuse(a.error_text); });
//   storage.fetch(64, [](std::vector<StoredRecord> got) { /* hold and replay them */ });
//   storage.mark_done(id);  // after a 2xx
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "queue/queued_request.hpp"

namespace sluice::queue {

// One record to replay, as fetched.
struct StoredRecord {
  std::uint64_t id = 0;  // orders records: arrival order within one storage
  std::shared_ptr<const QueuedRequest> request;
  int attempts = 0;  // counted attempts so far (kept across restarts and instances)
};

struct Appended {
  enum class Error { kNone, kFull, kIo, kUnavailable };
  std::uint64_t id = 0;  // 0: not stored
  Error error = Error::kNone;
  std::string error_text;
  std::string label;     // the id as the client sees it (X-Sluice-Queued)
  bool spilled = false;  // stored in the local log because Redis was down
};

struct DeadLetterView {
  std::uint64_t id = 0;
  DeadLetter letter;
};

class QueueStorage {
 public:
  virtual ~QueueStorage() = default;
  virtual const char* kind() const = 0;  // "local", "redis"

  // Stores a request durably, then calls `done` once: at once on the calling thread (local) or
  // later on another thread (redis). Never blocks for longer than the storage's own timeout.
  virtual void append(const QueuedRequest& request, std::function<void(Appended)> done) = 0;
  // Up to `max` records this instance may now replay (it holds them until mark_done/bury);
  // `done` once, on any thread. Records already handed out are not handed out again.
  virtual void fetch(std::size_t max, std::function<void(std::vector<StoredRecord>)> done) = 0;
  // Final answers. A mark that cannot be written leaves the record to come back later (a
  // duplicate with the same idempotency key): logged, never fatal.
  virtual void mark_done(std::uint64_t id) = 0;
  // Moves a record to the dead letters; false when it could not be (it stays pending).
  virtual bool bury(std::uint64_t id, const DeadLetter& letter) = 0;
  // Keeps a counted attempt, so that max_attempts holds across restarts.
  virtual void count_attempt(std::uint64_t id, int attempts) = 0;
  // Periodic work (fsync of the local log; Redis: the leases, the stream's length, moving the
  // spilled writes). On the replayer thread.
  virtual void tick() {}
  // Whether this instance may still send a record it holds. False for a Redis partition whose
  // lease this instance lost (its new owner delivers it), and for the local spill of a Redis
  // queue once Redis is back (its writes move to the stream). all_mine(): a cheap "every record
  // may be sent", so that the replayer looks at single records only when it is false.
  virtual bool all_mine() { return true; }
  virtual bool still_mine(std::uint64_t id) {
    (void)id;
    return true;
  }
  // Records the replayer held and no longer sends (not still_mine, nothing of their order key in
  // flight): the storage takes them back, and hands them out again or leaves them to another
  // instance.
  virtual void let_go(std::vector<StoredRecord> records) { (void)records; }

  // Admin: the dead letters, requeue (a new record, the same key; its id or 0) and drop.
  virtual std::vector<DeadLetterView> dead_letters() = 0;
  virtual std::uint64_t requeue(std::uint64_t dead_id, std::string& error) = 0;
  virtual bool drop(std::uint64_t dead_id) = 0;

  // Stats: records stored and not done (redis: in the whole stream, every instance's), dead
  // letters, bytes on disk (local only), and whether the backend answers.
  virtual std::size_t depth() = 0;
  virtual std::size_t dead_count() = 0;
  virtual std::uint64_t bytes() = 0;
  virtual bool up() const { return true; }
  // Shared with other instances (redis): the replayer holds only a bounded batch of its records,
  // and polls for more (records other instances stored arrive without a call here).
  virtual bool shared() const { return false; }
};

}  // namespace sluice::queue
