// The replayer of StoreAndForward (see store_and_forward.hpp): what is sent when, and what an
// answer does to the record. Every function here runs on the queue's own thread.
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <set>
#include <unordered_set>

#include "queue/retry_after.hpp"
#include "queue/store_and_forward.hpp"

namespace sluice::queue {

using SteadyClock = std::chrono::steady_clock;

void StoreAndForward::schedule_pump_at(SteadyClock::time_point when) {
  pump_timer_->expires_at(when);
  pump_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) pump();
  });
}

void StoreAndForward::pump() {
  struct Send {
    std::uint64_t id;
    std::shared_ptr<const QueuedRequest> request;
    int attempt;
  };
  std::vector<Send> sends;
  Sender sender;
  std::vector<std::size_t> fetch;
  {
    std::lock_guard lock(mu_);
    if (paused_ || !sender_) return;
    // Records come only through fetch(): the local log's after an enqueue, a shared stream's
    // whenever there is room (other instances store records without telling this one).
    for (std::size_t i = 0; i < storages_.size(); ++i) {
      const std::size_t room = storages_[i]->shared() ? options_.max_held : ~std::size_t{0};
      if (fetch_due_[i] && !fetching_[i] && held_[i] < room) {
        fetch_due_[i] = false;
        fetching_[i] = true;
        fetch.push_back(i);
      }
    }
  }
  for (std::size_t i : fetch)
    fetch_from(i);
  let_go_lost();
  {
    std::lock_guard lock(mu_);
    if (paused_ || !sender_ || pending_.empty()) return;
    const auto now = SteadyClock::now();
    if (retry_at_ > now) {
      schedule_pump_at(retry_at_);
      return;
    }
    const std::size_t cap = probing_ ? 1 : static_cast<std::size_t>(options_.concurrency);
    // Keys with a request in flight or an earlier one waiting: their later requests wait. The
    // scan is bounded so that a long line behind one hot key does not cost every pump.
    std::unordered_set<std::string> busy;
    std::size_t scanned = 0;
    const std::size_t scan_limit = cap * 64 + 1024;
    const double rate = options_.max_rate;
    if (rate > 0) {
      const double burst = std::max(1.0, rate / 20);
      tokens_ =
          std::min(burst, tokens_ + rate * std::chrono::duration<double>(now - tokens_at_).count());
      tokens_at_ = now;
    }
    for (auto& [id, e] : pending_) {
      if (in_flight_ >= cap || ++scanned > scan_limit) break;
      if (rate > 0 && tokens_ < 1) {  // the next token's time
        schedule_pump_at(now + std::chrono::duration_cast<SteadyClock::duration>(
                                   std::chrono::duration<double>((1 - tokens_) / rate)));
        break;
      }
      const std::string& key = e.request->order_key;
      if (e.in_flight) {
        if (!key.empty()) busy.insert(key);
        continue;
      }
      if (!key.empty() && !busy.insert(key).second) continue;
      if (!e.from->still_mine(id)) continue;  // let go at the next pump (a key's later ones wait)
      e.in_flight = true;
      ++in_flight_;
      if (rate > 0) tokens_ -= 1;
      sends.push_back({id, e.request, e.attempts + 1});
    }
    sender = sender_;
  }
  for (auto& s : sends) {
    spdlog::debug("queue {}: replaying write {} ({} {}), attempt {}", options_.name, s.id,
                  s.request->method, s.request->target, s.attempt);
    sender(*io_, s.id, *s.request, s.attempt,
           [this, id = s.id](ReplayAnswer a) { on_answer(id, std::move(a)); });
  }
}

void StoreAndForward::let_go_lost() {
  std::vector<std::vector<StoredRecord>> gone(storages_.size());
  {
    std::lock_guard lock(mu_);
    bool any = false;
    for (const auto& st : storages_)
      any = any || !st->all_mine();
    if (!any) return;
    // A record goes back to its storage only when nothing of its order key from the same
    // storage is in flight (or kept): so that the next holder cannot overtake an earlier write
    // of the key this instance is still sending.
    std::set<std::pair<const QueueStorage*, std::string>> busy;
    for (auto it = pending_.begin(); it != pending_.end();) {
      Entry& e = it->second;
      const std::string& key = e.request->order_key;
      const bool keyed = !key.empty();
      if (e.in_flight || e.from->still_mine(it->first) || (keyed && busy.contains({e.from, key}))) {
        if (keyed && (e.in_flight || !e.from->still_mine(it->first))) busy.insert({e.from, key});
        ++it;
        continue;
      }
      for (std::size_t i = 0; i < storages_.size(); ++i) {
        if (storages_[i].get() != e.from) continue;
        if (held_[i] > 0) --held_[i];
        gone[i].push_back({it->first, std::move(e.request), e.attempts});
      }
      it = pending_.erase(it);
    }
    update_gauges_locked();
  }
  for (std::size_t i = 0; i < storages_.size(); ++i) {
    if (gone[i].empty()) continue;
    spdlog::info("queue {}: {} held writes handed back to the {} storage", options_.name,
                 gone[i].size(), storages_[i]->kind());
    storages_[i]->let_go(std::move(gone[i]));
  }
}

void StoreAndForward::fetch_from(std::size_t index) {
  std::size_t room = ~std::size_t{0};
  {
    std::lock_guard lock(mu_);
    if (storages_[index]->shared())
      room = options_.max_held - std::min(options_.max_held, held_[index]);
  }
  storages_[index]->fetch(room, [this, index](std::vector<StoredRecord> got) {
    // Posted even from the replayer thread itself: pump() is not re-entered.
    post([this, index, got = std::move(got)]() mutable { take(index, std::move(got)); });
  });
}

void StoreAndForward::take(std::size_t index, std::vector<StoredRecord> records) {
  {
    std::lock_guard lock(mu_);
    fetching_[index] = false;
    for (auto& r : records) {
      // A record fetched again (a shared stream's record this instance already holds) is kept
      // once.
      if (!pending_
               .emplace(r.id,
                        Entry{std::move(r.request), r.attempts, false, storages_[index].get()})
               .second)
        continue;
      ++held_[index];
    }
    if (!records.empty()) fetch_due_[index] = true;  // there may be more
    update_gauges_locked();
  }
  pump();
}

std::chrono::milliseconds StoreAndForward::backoff_for(int failures, std::string_view retry_after) {
  const auto base = options_.backoff_base.count();
  const auto cap = options_.backoff_max.count();
  long long d = base;
  for (int i = 1; i < failures && d < cap; ++i)
    d *= 2;
  d = std::min<long long>(d, cap);
  // Equal jitter: half fixed, half random, so that sluice instances do not retry in step.
  std::uniform_int_distribution<long long> half(0, std::max<long long>(d / 2, 0));
  d = d - d / 2 + half(random_);
  // Retry-After as delay-seconds or an HTTP-date (at most an hour).
  if (auto wait = retry_after_delay(retry_after, std::chrono::system_clock::now()))
    d = std::max<long long>(d, std::min<long long>(wait->count(), 3'600'000));
  return std::chrono::milliseconds(d);
}

void StoreAndForward::on_answer(std::uint64_t id, ReplayAnswer a) {
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Entry& e = it->second;
    e.in_flight = false;
    --in_flight_;
    const auto now = SteadyClock::now();
    const bool answered = a.kind == ReplayAnswer::Kind::kAnswered;
    const bool retryable_4xx = a.status == 408 || a.status == 429;
    if (answered && a.status < 400) {
      e.from->mark_done(id);  // when it cannot be marked: a duplicate later, with the same key
      for (std::size_t i = 0; i < storages_.size(); ++i)
        if (storages_[i].get() == e.from && held_[i] > 0) --held_[i];
      pending_.erase(it);
      ++delivered_;
      if (metrics_.replayed_done != nullptr) metrics_.replayed_done->Increment();
      probing_ = false;
      failures_ = 0;
      if (!drain_started_) drain_started_ = now;
    } else if (answered && a.status < 500 && !retryable_4xx) {
      ++e.attempts;
      probing_ = false;  // the upstream is there: it refused this write
      failures_ = 0;
      if (!kill_locked(id, e, "rejected", a.status, std::move(a.body)))
        retry_at_ = now + options_.backoff_max;  // the disk is full: not in a tight loop
    } else {
      // Not counted against the write: the cluster unreachable, or a probe during an outage
      // that timed out (a black-holed network), so that a long outage kills no write.
      const bool counted = a.kind != ReplayAnswer::Kind::kUnreachable &&
                           !(a.kind == ReplayAnswer::Kind::kTimedOut && probing_);
      if (counted) {
        ++e.attempts;
        if (e.attempts < options_.max_attempts) e.from->count_attempt(id, e.attempts);
      }
      std::string why = answered ? "status " + std::to_string(a.status) : a.error;
      if (counted && e.attempts >= options_.max_attempts &&
          kill_locked(id, e, "max_attempts", a.status, answered ? std::move(a.body) : why)) {
        // moved to the dead letters
      } else {
        if (retry_at_ <= now) {  // one failure per wave of in-flight requests
          ++failures_;
          retry_at_ = now + backoff_for(failures_, a.retry_after);
        } else if (!a.retry_after.empty()) {
          retry_at_ = std::max(retry_at_, now + backoff_for(failures_, a.retry_after));
        }
        probing_ = true;
        ++retried_;
        prometheus::Counter* c = counted ? metrics_.replayed_retry : metrics_.replayed_unreachable;
        if (c != nullptr) c->Increment();
        spdlog::debug(
            "queue {}: write {} not delivered ({}); next try in {} ms", options_.name, id, why,
            std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - now).count());
      }
    }
    end_drain_locked(now);
    update_gauges_locked();
  }
  pump();
}

void StoreAndForward::end_drain_locked(SteadyClock::time_point now) {
  if (!pending_.empty() || !drain_started_) return;
  // Empty means empty in the storages too: a shared stream's writes this instance has not
  // fetched yet (or whose acks Redis has not answered) keep the drain going; tick() looks again.
  for (const auto& st : storages_)
    if (st->depth() > 0) return;
  last_drain_seconds_ = std::chrono::duration<double>(now - *drain_started_).count();
  if (metrics_.drain_seconds != nullptr) metrics_.drain_seconds->Observe(last_drain_seconds_);
  spdlog::info("queue {}: drained in {:.3f} s", options_.name, last_drain_seconds_);
  drain_started_.reset();
}

void StoreAndForward::tick() {
  for (const auto& st : storages_)
    st->tick();
  bool shared = false;
  {
    std::lock_guard lock(mu_);
    end_drain_locked(SteadyClock::now());
    if (options_.max_age.count() > 0) {
      const auto cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count() -
                          options_.max_age.count();
      for (auto it = pending_.begin(); it != pending_.end();) {
        auto next = std::next(it);
        if (it->second.request->enqueued_unix_ms <= cutoff && !it->second.in_flight)
          kill_locked(it->first, it->second, "expired", 0, "older than max_age_ms");
        it = next;
      }
    }
    for (std::size_t i = 0; i < storages_.size(); ++i) {
      // A shared storage's records other instances stored; a local one's handed back (let_go).
      fetch_due_[i] = true;
      shared = shared || storages_[i]->shared();
    }
    update_gauges_locked();
  }
  if (shared) pump();
  auto period = options_.log.fsync == FsyncPolicy::kInterval
                    ? std::min(options_.fsync_interval, std::chrono::milliseconds(1000))
                    : std::chrono::milliseconds(1000);
  if (shared) period = std::min(period, options_.poll_interval);
  tick_timer_->expires_after(period);
  tick_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

}  // namespace sluice::queue
