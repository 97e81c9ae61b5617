#include "queue/local_storage.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

namespace sluice::queue {

LocalStorage::LocalStorage(const LogOptions& options, std::string name) : name_(std::move(name)) {
  log_ = std::make_unique<SegmentLog>(options);
  LogOptions dead = options;
  dead.dir += "/dead";
  dead.max_bytes = ~std::uint64_t{0};  // a dead letter is never refused for space it has
  dead_log_ = std::make_unique<SegmentLog>(dead);
}

LocalStorage::~LocalStorage() {
  std::lock_guard lock(mu_);
  log_->sync();
  dead_log_->sync();
}

std::unique_ptr<LocalStorage> LocalStorage::open(const LogOptions& options, const std::string& name,
                                                 std::string& error) {
  std::unique_ptr<LocalStorage> s(new LocalStorage(options, name));
  std::vector<LogRecord> pending, dead_records;
  std::vector<std::string> warnings;
  error = s->log_->open(pending, warnings);
  if (error.empty()) error = s->dead_log_->open(dead_records, warnings);
  for (const auto& w : warnings)
    spdlog::warn("queue {}: {}", name, w);
  if (!error.empty()) return nullptr;
  for (auto& r : pending) {
    auto request = decode_request(r.payload);
    if (!request) {  // a record with a valid checksum this version cannot read: keep it
      spdlog::error("queue {}: record {} cannot be decoded; kept in the log, not replayed", name,
                    r.id);
      continue;
    }
    s->fresh_.push_back(
        {r.id, std::make_shared<const QueuedRequest>(std::move(*request)), r.attempts});
  }
  for (auto& r : dead_records) {
    if (auto d = decode_dead_letter(r.payload)) s->dead_[r.id] = std::move(*d);
  }
  if (!s->fresh_.empty())
    spdlog::info("queue {}: {} writes pending from before the restart", name, s->fresh_.size());
  return s;
}

void LocalStorage::append(const QueuedRequest& request, std::function<void(Appended)> done) {
  Appended out;
  const std::string bytes = encode(request);
  {
    std::lock_guard lock(mu_);
    out.id = log_->append(bytes);
    if (out.id == 0) {
      out.error = log_->last_error() == SegmentLog::AppendError::kFull ? Appended::Error::kFull
                                                                       : Appended::Error::kIo;
      out.error_text = log_->last_error_text();
    } else {
      fresh_.push_back({out.id, std::make_shared<const QueuedRequest>(request), 0});
      out.label = std::to_string(out.id);
    }
  }
  done(std::move(out));
}

void LocalStorage::fetch(std::size_t max, std::function<void(std::vector<StoredRecord>)> done) {
  if (parked()) {
    done({});
    return;
  }
  auto out = take_fresh(max);
  {
    std::lock_guard lock(mu_);
    for (const auto& r : out)
      held_.insert(r.id);
  }
  done(std::move(out));
}

std::size_t LocalStorage::held() {
  std::lock_guard lock(mu_);
  return held_.size();
}

std::vector<StoredRecord> LocalStorage::take_fresh(std::size_t max) {
  std::vector<StoredRecord> out;
  std::lock_guard lock(mu_);
  while (!fresh_.empty() && out.size() < max) {
    out.push_back(std::move(fresh_.front()));
    fresh_.pop_front();
  }
  return out;
}

void LocalStorage::let_go(std::vector<StoredRecord> records) {
  std::lock_guard lock(mu_);
  for (auto& r : records) {
    held_.erase(r.id);
    fresh_.push_back(std::move(r));
  }
  // Back in id order: handed out again (or moved) in arrival order.
  std::sort(fresh_.begin(), fresh_.end(),
            [](const StoredRecord& a, const StoredRecord& b) { return a.id < b.id; });
}

void LocalStorage::mark_done(std::uint64_t id) {
  std::lock_guard lock(mu_);
  held_.erase(id);
  if (!log_->mark_done(id))  // it comes back after a restart: a duplicate, same key
    spdlog::warn("queue {}: the done-mark of write {} could not be written: {}", name_, id,
                 log_->last_error_text());
}

bool LocalStorage::bury(std::uint64_t id, const DeadLetter& letter) {
  std::lock_guard lock(mu_);
  const std::uint64_t dead_id = dead_log_->append(encode(letter));
  if (dead_id == 0) {
    spdlog::error("queue {}: write {} cannot be moved to the dead letters ({}); it stays queued",
                  name_, id, dead_log_->last_error_text());
    return false;
  }
  held_.erase(id);
  log_->mark_done(id);
  dead_[dead_id] = letter;
  return true;
}

void LocalStorage::count_attempt(std::uint64_t id, int attempts) {
  std::lock_guard lock(mu_);
  log_->mark_attempts(id, attempts);
}

void LocalStorage::tick() {
  int fds[2] = {-1, -1};
  {
    std::lock_guard lock(mu_);
    if (log_->options().fsync != FsyncPolicy::kNever) {
      fds[0] = log_->take_sync_fd();
      fds[1] = dead_log_->take_sync_fd();
    }
  }
  // Outside the lock: appends go on while the disk syncs (a sync on a duplicate descriptor
  // covers every byte written to the file before it).
  for (int fd : fds) {
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::close(fd);
  }
}

std::vector<DeadLetterView> LocalStorage::dead_letters() {
  std::lock_guard lock(mu_);
  std::vector<DeadLetterView> out;
  for (const auto& [id, d] : dead_)
    out.push_back({id, d});
  return out;
}

std::uint64_t LocalStorage::requeue(std::uint64_t dead_id, std::string& error) {
  std::lock_guard lock(mu_);
  auto it = dead_.find(dead_id);
  if (it == dead_.end()) {
    error = "no dead letter " + std::to_string(dead_id);
    return 0;
  }
  // Appended before the dead letter is dropped: a crash in between leaves both (a duplicate
  // with the same idempotency key), never neither.
  const std::uint64_t id = log_->append(encode(it->second.request));
  if (id == 0) {
    error = "the queue cannot take it: " + log_->last_error_text();
    return 0;
  }
  fresh_.push_back({id, std::make_shared<const QueuedRequest>(it->second.request), 0});
  dead_log_->mark_done(dead_id);
  dead_.erase(it);
  return id;
}

bool LocalStorage::drop(std::uint64_t dead_id) {
  std::lock_guard lock(mu_);
  auto it = dead_.find(dead_id);
  if (it == dead_.end() || !dead_log_->mark_done(dead_id)) return false;
  dead_.erase(it);
  return true;
}

std::size_t LocalStorage::depth() {
  std::lock_guard lock(mu_);
  return log_->pending();
}

std::size_t LocalStorage::dead_count() {
  std::lock_guard lock(mu_);
  return dead_.size();
}

std::uint64_t LocalStorage::bytes() {
  std::lock_guard lock(mu_);
  return log_->bytes_on_disk();
}

}  // namespace sluice::queue
