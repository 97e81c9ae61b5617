#include "queue/store_and_forward.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

namespace sluice::queue {
namespace {

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

StoreAndForward::StoreAndForward(QueueOptions options, QueueMetrics metrics)
    : options_(std::move(options)), metrics_(metrics) {}

std::shared_ptr<StoreAndForward> StoreAndForward::open(QueueOptions options, QueueMetrics metrics,
                                                       std::string& error) {
  std::shared_ptr<StoreAndForward> q(new StoreAndForward(std::move(options), metrics));
  const auto& o = q->options_;
  q->log_ = std::make_unique<SegmentLog>(o.log);
  LogOptions dead = o.log;
  dead.dir += "/dead";
  dead.max_bytes = ~std::uint64_t{0};  // a dead letter is never refused for space it has
  q->dead_log_ = std::make_unique<SegmentLog>(dead);
  std::vector<LogRecord> pending, dead_records;
  std::vector<std::string> warnings;
  error = q->log_->open(pending, warnings);
  if (error.empty()) error = q->dead_log_->open(dead_records, warnings);
  for (const auto& w : warnings)
    spdlog::warn("queue {}: {}", o.name, w);
  if (!error.empty()) return nullptr;
  for (auto& r : pending) {
    auto request = decode_request(r.payload);
    if (!request) {  // a record with a valid checksum this version cannot read: keep it
      spdlog::error("queue {}: record {} cannot be decoded; kept in the log, not replayed", o.name,
                    r.id);
      continue;
    }
    q->pending_[r.id] = Entry{std::make_shared<const QueuedRequest>(std::move(*request)), 0, false};
  }
  for (auto& r : dead_records) {
    if (auto d = decode_dead_letter(r.payload)) q->dead_[r.id] = std::move(*d);
  }
  if (!q->pending_.empty())
    spdlog::info("queue {}: {} writes pending from before the restart", o.name, q->pending_.size());
  {
    std::lock_guard lock(q->mu_);
    q->update_gauges_locked();
  }
  q->thread_ = new server::WorkerPool(1, "queue");
  q->io_ = &q->thread_->context(0);
  q->pump_timer_ = std::make_unique<boost::asio::steady_timer>(*q->io_);
  q->tick_timer_ = std::make_unique<boost::asio::steady_timer>(*q->io_);
  auto* raw = q.get();
  boost::asio::post(*q->io_, [raw] { raw->tick(); });
  q->thread_->start();
  return q;
}

StoreAndForward::~StoreAndForward() {
  if (thread_ != nullptr) {
    thread_->stop();
    pump_timer_.reset();
    tick_timer_.reset();
    // Kept (reachable, so no leak report) for the cluster's pool of this thread: see the header.
    static std::mutex mu;
    static auto* stopped = new std::vector<server::WorkerPool*>();
    std::lock_guard lock(mu);
    stopped->push_back(thread_);
  }
  std::lock_guard lock(mu_);
  if (log_) log_->sync();
  if (dead_log_) dead_log_->sync();
}

void StoreAndForward::post(std::function<void()> f) {
  boost::asio::post(*io_, std::move(f));
}

void StoreAndForward::set_sender(Sender sender) {
  {
    std::lock_guard lock(mu_);
    sender_ = std::move(sender);
  }
  post([this] { pump(); });
}

void StoreAndForward::set_options(const QueueOptions& o) {
  std::lock_guard lock(mu_);
  options_.concurrency = o.concurrency;
  options_.max_rate = o.max_rate;
  options_.max_attempts = o.max_attempts;
  options_.backoff_base = o.backoff_base;
  options_.backoff_max = o.backoff_max;
  options_.replay_timeout = o.replay_timeout;
  options_.max_age = o.max_age;
}

StoreAndForward::Enqueued StoreAndForward::enqueue(QueuedRequest request) {
  Enqueued out;
  if (request.enqueued_unix_ms == 0) request.enqueued_unix_ms = unix_ms_now();
  const std::string bytes = encode(request);
  {
    std::lock_guard lock(mu_);
    out.id = log_->append(bytes);
    if (out.id == 0) {
      out.error = log_->last_error();
      out.error_text = log_->last_error_text();
      return out;
    }
    pending_[out.id] = Entry{std::make_shared<const QueuedRequest>(std::move(request)), 0, false};
    ++enqueued_;
    if (metrics_.enqueued != nullptr) metrics_.enqueued->Increment();
    if (metrics_.depth != nullptr) metrics_.depth->Set(static_cast<double>(pending_.size()));
    if (metrics_.bytes != nullptr) metrics_.bytes->Set(static_cast<double>(log_->bytes_on_disk()));
  }
  post([this] { pump(); });
  return out;
}

void StoreAndForward::pause() {
  std::lock_guard lock(mu_);
  paused_ = true;
}

void StoreAndForward::resume() {
  {
    std::lock_guard lock(mu_);
    paused_ = false;
  }
  post([this] { pump(); });
}

void StoreAndForward::drain() {
  {
    std::lock_guard lock(mu_);
    paused_ = false;
    retry_at_ = {};
  }
  post([this] { pump(); });
}

QueueStats StoreAndForward::stats() {
  std::lock_guard lock(mu_);
  QueueStats s;
  s.name = options_.name;
  s.dir = options_.log.dir;
  s.depth = pending_.size();
  s.in_flight = in_flight_;
  s.dead_letters = dead_.size();
  s.bytes = log_->bytes_on_disk();
  if (!pending_.empty()) {
    s.oldest_age_seconds =
        static_cast<double>(unix_ms_now() - pending_.begin()->second.request->enqueued_unix_ms) /
        1000.0;
  }
  const auto now = std::chrono::steady_clock::now();
  if (retry_at_ > now) s.backoff_seconds = std::chrono::duration<double>(retry_at_ - now).count();
  s.state = paused_                 ? "paused"
            : pending_.empty()      ? "idle"
            : s.backoff_seconds > 0 ? "waiting"
                                    : "replaying";
  s.last_drain_seconds = last_drain_seconds_;
  s.enqueued = enqueued_;
  s.delivered = delivered_;
  s.retried = retried_;
  s.dead = dead_total_;
  return s;
}

std::vector<DeadLetterView> StoreAndForward::dead_letters() {
  std::lock_guard lock(mu_);
  std::vector<DeadLetterView> out;
  for (const auto& [id, d] : dead_)
    out.push_back({id, d});
  return out;
}

std::uint64_t StoreAndForward::requeue(std::uint64_t dead_id, std::string& error) {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    auto it = dead_.find(dead_id);
    if (it == dead_.end()) {
      error = "no dead letter " + std::to_string(dead_id);
      return 0;
    }
    // Appended before the dead letter is dropped: a crash in between leaves both (a duplicate
    // with the same idempotency key), never neither.
    id = log_->append(encode(it->second.request));
    if (id == 0) {
      error = "the queue cannot take it: " + log_->last_error_text();
      return 0;
    }
    pending_[id] = Entry{std::make_shared<const QueuedRequest>(it->second.request), 0, false};
    dead_log_->mark_done(dead_id);
    dead_.erase(it);
    update_gauges_locked();
  }
  post([this] { pump(); });
  return id;
}

bool StoreAndForward::drop(std::uint64_t dead_id) {
  std::lock_guard lock(mu_);
  auto it = dead_.find(dead_id);
  if (it == dead_.end() || !dead_log_->mark_done(dead_id)) return false;
  dead_.erase(it);
  update_gauges_locked();
  return true;
}

bool StoreAndForward::kill_locked(std::uint64_t id, Entry& e, std::string reason, int status,
                                  std::string answer) {
  DeadLetter d;
  d.request = *e.request;
  d.queued_id = id;
  d.reason = std::move(reason);
  d.status = status;
  if (answer.size() > 4096) answer.resize(4096);
  d.answer = std::move(answer);
  d.attempts = e.attempts;
  d.dead_unix_ms = unix_ms_now();
  const std::uint64_t dead_id = dead_log_->append(encode(d));
  if (dead_id == 0) {
    spdlog::error("queue {}: write {} cannot be moved to the dead letters ({}); it stays queued",
                  options_.name, id, dead_log_->last_error_text());
    return false;
  }
  spdlog::warn("queue {}: write {} ({} {}, Idempotency-Key {}) is a dead letter: {} (status {})",
               options_.name, id, d.request.method, d.request.target, d.request.idempotency_key,
               d.reason, d.status);
  log_->mark_done(id);
  dead_[dead_id] = std::move(d);
  pending_.erase(id);
  ++dead_total_;
  if (metrics_.replayed_dead != nullptr) metrics_.replayed_dead->Increment();
  update_gauges_locked();
  return true;
}

void StoreAndForward::update_gauges_locked() {
  if (metrics_.depth != nullptr) metrics_.depth->Set(static_cast<double>(pending_.size()));
  if (metrics_.bytes != nullptr) metrics_.bytes->Set(static_cast<double>(log_->bytes_on_disk()));
  if (metrics_.dead_letters != nullptr)
    metrics_.dead_letters->Set(static_cast<double>(dead_.size()));
  if (metrics_.oldest_age != nullptr) {
    metrics_.oldest_age->Set(
        pending_.empty() ? 0.0
                         : static_cast<double>(unix_ms_now() -
                                               pending_.begin()->second.request->enqueued_unix_ms) /
                               1000.0);
  }
}

}  // namespace sluice::queue
