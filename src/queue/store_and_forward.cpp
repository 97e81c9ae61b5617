#include "queue/store_and_forward.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "queue/local_storage.hpp"

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
  auto local = LocalStorage::open(options.log, options.name, error);
  if (!local) return nullptr;
  return open(std::move(options), metrics, {std::shared_ptr<QueueStorage>(std::move(local))});
}

std::shared_ptr<StoreAndForward> StoreAndForward::open(
    QueueOptions options, QueueMetrics metrics,
    std::vector<std::shared_ptr<QueueStorage>> storages) {
  std::shared_ptr<StoreAndForward> q(new StoreAndForward(std::move(options), metrics));
  q->storages_ = std::move(storages);
  q->fetch_due_.assign(q->storages_.size(), true);
  q->fetching_.assign(q->storages_.size(), false);
  q->held_.assign(q->storages_.size(), 0);
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
  storages_.clear();
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
  options_.max_held = o.max_held;
}

void StoreAndForward::enqueue(QueuedRequest request, std::function<void(Appended)> done) {
  if (request.enqueued_unix_ms == 0) request.enqueued_unix_ms = unix_ms_now();
  storages_.front()->append(request, [this, done = std::move(done)](Appended a) {
    if (a.id != 0) {
      {
        std::lock_guard lock(mu_);
        ++enqueued_;
        fetch_due_.assign(fetch_due_.size(), true);
        if (metrics_.enqueued != nullptr) metrics_.enqueued->Increment();
        update_gauges_locked();
      }
      post([this] { pump(); });
    }
    done(std::move(a));
  });
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
    fetch_due_.assign(fetch_due_.size(), true);
  }
  post([this] { pump(); });
}

QueueStats StoreAndForward::stats() {
  QueueStats s;
  for (const auto& st : storages_) {
    s.depth += st->depth();
    s.dead_letters += st->dead_count();
    s.bytes += st->bytes();
  }
  s.backend = storages_.front()->kind();
  s.backend_up = storages_.front()->up();
  std::lock_guard lock(mu_);
  s.name = options_.name;
  s.dir = options_.log.dir;
  s.in_flight = in_flight_;
  if (!pending_.empty()) {
    std::int64_t oldest = pending_.begin()->second.request->enqueued_unix_ms;
    for (const auto& [id, e] : pending_)  // ids of two storages do not follow one clock
      oldest = std::min(oldest, e.request->enqueued_unix_ms);
    s.oldest_age_seconds = static_cast<double>(unix_ms_now() - oldest) / 1000.0;
  }
  const auto now = std::chrono::steady_clock::now();
  if (retry_at_ > now) s.backoff_seconds = std::chrono::duration<double>(retry_at_ - now).count();
  s.state = paused_                            ? "paused"
            : pending_.empty() && s.depth == 0 ? "idle"
            : s.backoff_seconds > 0            ? "waiting"
                                               : "replaying";
  s.last_drain_seconds = last_drain_seconds_;
  s.enqueued = enqueued_;
  s.delivered = delivered_;
  s.retried = retried_;
  s.dead = dead_total_;
  return s;
}

std::vector<DeadLetterView> StoreAndForward::dead_letters() {
  std::vector<DeadLetterView> out;
  for (const auto& st : storages_) {
    auto some = st->dead_letters();
    out.insert(out.end(), some.begin(), some.end());
  }
  return out;
}

std::uint64_t StoreAndForward::requeue(std::uint64_t dead_id, std::string& error) {
  std::uint64_t id = 0;
  for (const auto& st : storages_) {
    error.clear();
    id = st->requeue(dead_id, error);
    if (id != 0 || !error.starts_with("no dead letter")) break;
  }
  if (id != 0) {
    {
      std::lock_guard lock(mu_);
      fetch_due_.assign(fetch_due_.size(), true);
      update_gauges_locked();
    }
    post([this] { pump(); });
  }
  return id;
}

bool StoreAndForward::drop(std::uint64_t dead_id) {
  for (const auto& st : storages_) {
    if (st->drop(dead_id)) {
      std::lock_guard lock(mu_);
      update_gauges_locked();
      return true;
    }
  }
  return false;
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
  if (!e.from->bury(id, d)) return false;
  spdlog::warn("queue {}: write {} ({} {}, Idempotency-Key {}) is a dead letter: {} (status {})",
               options_.name, id, d.request.method, d.request.target, d.request.idempotency_key,
               d.reason, d.status);
  for (std::size_t i = 0; i < storages_.size(); ++i)
    if (storages_[i].get() == e.from && held_[i] > 0) --held_[i];
  pending_.erase(id);
  ++dead_total_;
  if (metrics_.replayed_dead != nullptr) metrics_.replayed_dead->Increment();
  update_gauges_locked();
  return true;
}

void StoreAndForward::update_gauges_locked() {
  // Under mu_ the storages' locks may be taken (never the other way round); a Redis storage's
  // counts are cached numbers.
  std::size_t depth = 0, dead = 0;
  std::uint64_t bytes = 0;
  for (const auto& st : storages_) {
    depth += st->depth();
    dead += st->dead_count();
    bytes += st->bytes();
  }
  if (metrics_.depth != nullptr) metrics_.depth->Set(static_cast<double>(depth));
  if (metrics_.bytes != nullptr) metrics_.bytes->Set(static_cast<double>(bytes));
  if (metrics_.dead_letters != nullptr) metrics_.dead_letters->Set(static_cast<double>(dead));
  if (metrics_.backend_up != nullptr) metrics_.backend_up->Set(storages_.front()->up() ? 1 : 0);
  if (metrics_.oldest_age != nullptr) {
    metrics_.oldest_age->Set(
        pending_.empty() ? 0.0
                         : static_cast<double>(unix_ms_now() -
                                               pending_.begin()->second.request->enqueued_unix_ms) /
                               1000.0);
  }
}

}  // namespace sluice::queue
