// LocalStorage — the embedded backend of a store-and-forward queue: a segment log on local disk
// (`<dir>`) for the writes and a second one (`<dir>/dead`) for the dead letters. Every record is
// this instance's to replay; appends answer at once. Also the spill of a Redis-backed queue while
// Redis is down (on_redis_down: local).
//
//   std::string error;
//   auto s = LocalStorage::open(log_options, "orders", error);   // null and error set on failure
//   s->append(request, [](Appended a) { ... });                 // `done` runs before it returns
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "queue/queue_storage.hpp"
#include "queue/segment_log.hpp"

namespace sluice::queue {

class LocalStorage final : public QueueStorage {
 public:
  // Opens (and recovers) both logs; recovery warnings go to the log (spdlog) under `name`.
  static std::unique_ptr<LocalStorage> open(const LogOptions& options, const std::string& name,
                                            std::string& error);
  ~LocalStorage() override;

  const char* kind() const override { return "local"; }
  void append(const QueuedRequest& request, std::function<void(Appended)> done) override;
  void fetch(std::size_t max, std::function<void(std::vector<StoredRecord>)> done) override;
  void mark_done(std::uint64_t id) override;
  bool bury(std::uint64_t id, const DeadLetter& letter) override;
  void count_attempt(std::uint64_t id, int attempts) override;
  void tick() override;
  std::vector<DeadLetterView> dead_letters() override;
  std::uint64_t requeue(std::uint64_t dead_id, std::string& error) override;
  bool drop(std::uint64_t dead_id) override;
  std::size_t depth() override;
  std::size_t dead_count() override;
  std::uint64_t bytes() override;

  // As the spill of a Redis queue: while `*parked` is true (Redis is back) nothing is handed to
  // the replayer, records it holds are taken back (let_go), and take_fresh() hands them to the
  // move into the stream instead.
  void park_while(std::shared_ptr<const std::atomic<bool>> parked) { parked_ = std::move(parked); }
  bool all_mine() override { return !parked(); }
  bool still_mine(std::uint64_t) override { return !parked(); }
  void let_go(std::vector<StoredRecord> records) override;
  // Up to `max` records not handed out, in id order (they are this caller's until mark_done or
  // let_go).
  std::vector<StoredRecord> take_fresh(std::size_t max);
  // Records handed to the replayer by fetch() and not done, buried or let go.
  std::size_t held();

 private:
  bool parked() const { return parked_ && parked_->load(); }

  LocalStorage(const LogOptions& options, std::string name);

  std::string name_;
  std::mutex mu_;  // everything below
  std::unique_ptr<SegmentLog> log_, dead_log_;
  std::deque<StoredRecord> fresh_;            // stored, not fetched yet
  std::map<std::uint64_t, DeadLetter> dead_;  // by id in the dead-letter log
  std::shared_ptr<const std::atomic<bool>> parked_;
  std::set<std::uint64_t> held_;  // see held()
};

}  // namespace sluice::queue
