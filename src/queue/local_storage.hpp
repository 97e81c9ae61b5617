// LocalStorage — the embedded backend of a store-and-forward queue: a segment log on local disk
// (`<dir>`) for the writes and a second one (`<dir>/dead`) for the dead letters. Every record is
// this instance's to replay; appends answer at once. Also the spill of a Redis-backed queue while
// Redis is down (on_redis_down: local).
//
//   std::string error;
//   auto s = LocalStorage::open(log_options, "orders", error);   // null and error set on failure
//   s->append(request, [](Appended a) { ... });                 // `done` runs before it returns
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
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

 private:
  LocalStorage(const LogOptions& options, std::string name);

  std::string name_;
  std::mutex mu_;  // everything below
  std::unique_ptr<SegmentLog> log_, dead_log_;
  std::deque<StoredRecord> fresh_;            // stored, not fetched yet
  std::map<std::uint64_t, DeadLetter> dead_;  // by id in the dead-letter log
};

}  // namespace sluice::queue
