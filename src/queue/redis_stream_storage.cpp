#include "queue/redis_stream_storage.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <random>

#include "queue/redis_stream_entry.hpp"

namespace sluice::queue {

using resilience::redis::RedisFailure;
using resilience::redis::RedisReply;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kEpochMs = 1'704'067'200'000;  // 2024-01-01T00:00:00Z

// KEYS: the attempts hash, then every partition's stream. ARGV: max_length, a marker prefix
// ('' for none), then per record (partition, encoded request, attempts, marker). Refuses the
// whole batch instead of trimming: the streams hold only undelivered writes (XDEL after the
// ack). A record whose marker key (prefix .. marker) exists was appended before (a move retried
// after a timeout that Redis did run): skipped, its id ''. Returns the new entries' ids.
constexpr const char* kAppendScript = R"(
redis.replicate_commands()
local total = 0
for i = 2, #KEYS do total = total + redis.call('XLEN', KEYS[i]) end
local n = (#ARGV - 2) / 4
if total + n > tonumber(ARGV[1]) then return redis.error_reply('FULL') end
local ids = {}
for j = 0, n - 1 do
  local p, m = tonumber(ARGV[3 + 4 * j]), ARGV[6 + 4 * j]
  if ARGV[2] ~= '' and redis.call('SET', ARGV[2] .. m, '1', 'NX', 'PX', 3600000) == false then
    ids[#ids + 1] = ''
  else
    local id = redis.call('XADD', KEYS[p + 2], '*', 'r', ARGV[4 + 4 * j])
    if ARGV[5 + 4 * j] ~= '0' then redis.call('HSET', KEYS[1], id .. '@' .. p, ARGV[5 + 4 * j]) end
    ids[#ids + 1] = id
  end
end
return ids)";
constexpr const char* kDoneScript = R"(
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[3])
return 1)";
constexpr const char* kBuryScript = R"(
redis.call('XADD', KEYS[3], '*', 'd', ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[3])
return 1)";
constexpr const char* kLengthScript = R"(
local total = 0
for i = 1, #KEYS do total = total + redis.call('XLEN', KEYS[i]) end
return total)";
std::string default_consumer() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(::getpid());
}

bool is_error(const RedisReply& r, std::string_view code) {
  return r.is_error_reply() && r.str.rfind(code, 0) == 0;
}

}  // namespace

struct RedisStreamStorage::Fetch {
  std::size_t max = 0;
  std::vector<StoredRecord> got;
  std::vector<std::pair<int, std::string>> deleted;  // in a PEL, the stream entry gone
  std::function<void(std::vector<StoredRecord>)> done;

  // Adds [[id, [fields]] ...] entries of partition p; nil fields (a deleted entry) are
  // acknowledged later.
  void add(const RedisReply& entries, int p, const std::string& queue) {
    for (const auto& e : entries.elements) {
      if (e.type != RedisReply::Type::kArray || e.elements.size() != 2) continue;
      const std::string& sid = e.elements[0].str;
      const RedisReply* r = entry_field(e.elements[1], "r");
      if (r == nullptr) {
        deleted.emplace_back(p, sid);
        continue;
      }
      auto request = decode_request(r->str);
      if (!request) {
        spdlog::error("queue {}: stream entry {}@{} cannot be decoded; left in the stream", queue,
                      sid, p);
        continue;
      }
      got.push_back({to_id(sid, p), std::make_shared<const QueuedRequest>(std::move(*request)), 0});
    }
  }
};

std::uint64_t RedisStreamStorage::to_id(std::string_view sid, int partition) {
  const auto dash = sid.find('-');
  std::uint64_t ms = 0, seq = 0;
  std::from_chars(sid.data(), sid.data() + std::min(dash, sid.size()), ms);
  if (dash != std::string_view::npos)
    std::from_chars(sid.data() + dash + 1, sid.data() + sid.size(), seq);
  ms = ms > kEpochMs ? ms - kEpochMs : 0;
  return ms << 23 | (seq & 0x1FFFF) << 6 | (static_cast<std::uint64_t>(partition) & 63);
}

std::string RedisStreamStorage::to_stream_id(std::uint64_t id) {
  return std::to_string((id >> 23) + kEpochMs) + "-" + std::to_string((id >> 6) & 0x1FFFF);
}

std::string RedisStreamStorage::label_of(std::uint64_t id) {
  return to_stream_id(id) + "@" + std::to_string(partition_of(id));
}

int RedisStreamStorage::partition_for(std::string_view key, int partitions) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a: stable across builds and instances
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<int>(h % static_cast<std::uint64_t>(std::max(1, partitions)));
}

RedisStreamStorage::RedisStreamStorage(RedisQueueOptions options, std::string queue_name,
                                       std::shared_ptr<LocalStorage> spill,
                                       RedisQueueMetrics metrics)
    : options_(std::move(options)),
      name_(std::move(queue_name)),
      dead_key_(options_.stream + ":dead"),
      attempts_key_(options_.stream + ":attempts"),
      members_key_(options_.stream + ":members"),
      spill_(std::move(spill)),
      metrics_(metrics) {
  if (options_.consumer.empty()) options_.consumer = default_consumer();
  // The leases name this run of this instance: two instances configured with the same consumer
  // name (a mistake) still never share a partition, and a restarted one waits for its old
  // leases to expire, like any other instance.
  std::random_device random;
  owner_ = options_.consumer + "/" + std::to_string(random()) + std::to_string(random());
  options_.partitions = std::clamp(options_.partitions, 1, kMaxPartitions);
  parts_.resize(static_cast<std::size_t>(options_.partitions));
  for (int p = 0; p < options_.partitions; ++p) {
    parts_[p].key = options_.stream + ":" + std::to_string(p);
    parts_[p].lease_key = parts_[p].key + ":owner";
  }
  if (spill_) spill_->park_while(spill_parked_);
  resilience::redis::RedisConnectionHooks hooks;
  hooks.on_error = [this](const std::string& why) {
    if (up_.exchange(false))
      spdlog::warn("queue {}: redis is down ({}); writes go to on_redis_down: {}", name_, why,
                   options_.on_down == RedisQueueOptions::OnDown::kLocal ? "local" : "reject");
  };
  hooks.on_ready = [this] {
    if (!up_.exchange(true)) spdlog::info("queue {}: redis is up again", name_);
    // Not create_groups() here: this may run before client_ is assigned. The next fetch does it.
    need_group_.store(true);
  };
  client_ =
      std::make_unique<resilience::redis::RedisClient>(options_.connection, 1, std::move(hooks));
}

void RedisStreamStorage::create_groups() {
  // From the stream's start (0): entries stored before the group existed are delivered too.
  for (const auto& part : parts_)
    client_->execute({"XGROUP", "CREATE", part.key, options_.group, "0", "MKSTREAM"},
                     [name = name_](RedisReply r) {
                       if (r.is_error_reply() && !is_error(r, "BUSYGROUP"))
                         spdlog::error("queue {}: XGROUP CREATE: {}", name, r.str);
                     });
}

int RedisStreamStorage::route(const QueuedRequest& request) {
  if (request.order_key.empty())
    return static_cast<int>(round_robin_.fetch_add(1) % static_cast<unsigned>(options_.partitions));
  return partition_for(request.order_key, options_.partitions);
}

std::vector<std::string> RedisStreamStorage::append_argv(
    const std::vector<std::pair<int, std::string>>& records) {
  std::vector<std::string> argv = {"EVAL", kAppendScript, std::to_string(1 + options_.partitions),
                                   attempts_key_};
  for (const auto& part : parts_)
    argv.push_back(part.key);
  argv.push_back(std::to_string(options_.max_length));
  argv.push_back("");  // no markers (a move sets them)
  for (const auto& [p, bytes] : records) {
    argv.push_back(std::to_string(p));
    argv.push_back(bytes);
    argv.push_back("0");
    argv.push_back("");
  }
  return argv;
}

void RedisStreamStorage::when_down(const QueuedRequest& request, const std::string& why,
                                   std::function<void(Appended)> done) {
  // up_ is the connection's to set: a single timed-out XADD on a live connection takes the
  // policy for that write only (a wedged connection is dropped by RedisConnection, and then
  // every write takes it until Redis is back).
  if (options_.on_down == RedisQueueOptions::OnDown::kReject || !spill_) {
    if (metrics_.down_rejected != nullptr) metrics_.down_rejected->Increment();
    spdlog::warn("queue {}: a write was refused, redis is down ({})", name_, why);
    Appended a;
    a.error = Appended::Error::kUnavailable;
    a.error_text = "redis is down: " + why;
    done(std::move(a));
    return;
  }
  if (metrics_.down_local != nullptr) metrics_.down_local->Increment();
  spdlog::warn("queue {}: redis is down ({}); a write is kept in the local log", name_, why);
  spill_->append(request, [done = std::move(done)](Appended a) {
    a.spilled = a.id != 0;
    if (a.id != 0) a.label = "local-" + a.label;
    done(std::move(a));
  });
}

void RedisStreamStorage::append(const QueuedRequest& request, std::function<void(Appended)> done) {
  if (!up_.load()) {
    when_down(request, client_->last_error(), std::move(done));
    return;
  }
  auto keep = std::make_shared<QueuedRequest>(request);  // for the down policy, if it comes to it
  const int p = route(request);
  client_->execute(append_argv({{p, encode(request)}}),
                   [this, p, keep, done = std::move(done)](RedisReply r) {
                     if (r.failed()) {
                       // A timed-out XADD may still have been stored: the local copy is then a
                       // duplicate, delivered with the same idempotency key.
                       when_down(*keep, r.str, std::move(done));
                       return;
                     }
                     Appended a;
                     if (r.is_error_reply() || r.elements.size() != 1) {
                       // (A script's error_reply('FULL') arrives as "ERR FULL" from Redis 7 on.)
                       const bool full = is_error(r, "FULL") || is_error(r, "ERR FULL");
                       a.error = full ? Appended::Error::kFull : Appended::Error::kIo;
                       a.error_text = full ? "the stream holds its max_length of " +
                                                 std::to_string(options_.max_length) + " writes"
                                           : "redis: " + r.str;
                     } else {
                       a.id = to_id(r.elements[0].str, p);
                       a.label = label_of(a.id);
                       depth_.fetch_add(1);
                     }
                     done(std::move(a));
                   });
}

void RedisStreamStorage::fetch(std::size_t max,
                               std::function<void(std::vector<StoredRecord>)> done) {
  auto f = std::make_shared<Fetch>();
  f->max = std::min<std::size_t>(max, 256);  // a reply's size stays under kMaxReplyElements
  f->done = std::move(done);
  if (f->max == 0 || !up_.load()) {
    f->done({});
    return;
  }
  if (need_group_.exchange(false)) create_groups();  // pipelined before the reads below
  read_more(f, 0);
}

// A newly owned partition: its pending entries (the previous owner's, in id order) before any
// new one. XAUTOCLAIM with idle 0 from the cursor, partition after partition.
void RedisStreamStorage::read_more(const std::shared_ptr<Fetch>& f, std::size_t next) {
  int p = -1;
  std::string cursor;
  {
    std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    for (std::size_t i = next; i < parts_.size() && f->got.size() < f->max; ++i) {
      if (parts_[i].owned && parts_[i].adopting && now < parts_[i].sendable_until) {
        p = static_cast<int>(i);
        cursor = parts_[i].adopt_cursor;
        break;
      }
    }
  }
  if (p < 0) {
    read_new(f);
    return;
  }
  client_->execute({"XAUTOCLAIM", parts_[p].key, options_.group, options_.consumer, "0", cursor,
                    "COUNT", std::to_string(f->max - f->got.size())},
                   [this, f, p](RedisReply r) {
                     if (r.ok() && r.elements.size() >= 2) {
                       const std::size_t before = f->got.size();
                       f->add(r.elements[1], p, name_);
                       if (f->got.size() > before)
                         spdlog::info("queue {}: claimed {} pending writes of partition {}", name_,
                                      f->got.size() - before, p);
                       std::lock_guard lock(mu_);
                       parts_[p].adopt_cursor = r.elements[0].str;
                       if (r.elements[0].str == "0-0")
                         parts_[p].adopting = false;  // all taken: new ones next
                     } else if (is_error(r, "NOGROUP")) {
                       need_group_.store(true);
                     }
                     read_more(f, static_cast<std::size_t>(p) + 1);
                   });
}

void RedisStreamStorage::read_new(const std::shared_ptr<Fetch>& f) {
  std::vector<int> readable;
  {
    std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    for (int p = 0; p < options_.partitions; ++p) {
      const Partition& part = parts_[p];
      if (part.owned && !part.adopting && !part.releasing && now < part.sendable_until)
        readable.push_back(p);
    }
  }
  if (f->got.size() >= f->max || readable.empty()) {
    read_attempts(f);
    return;
  }
  const std::size_t each = std::max<std::size_t>(1, (f->max - f->got.size()) / readable.size());
  std::vector<std::string> argv = {"XREADGROUP",      "GROUP", options_.group,
                                   options_.consumer, "COUNT", std::to_string(each),
                                   "STREAMS"};
  for (int p : readable)
    argv.push_back(parts_[p].key);
  for (std::size_t i = 0; i < readable.size(); ++i)
    argv.push_back(">");
  client_->execute(std::move(argv), [this, f, readable](RedisReply r) {
    if (r.ok()) {
      for (const auto& s : r.elements) {  // [[key, entries] ...]; nil when nothing new
        if (s.elements.size() != 2) continue;
        for (int p : readable)
          if (parts_[p].key == s.elements[0].str) f->add(s.elements[1], p, name_);
      }
    } else if (is_error(r, "NOGROUP")) {
      need_group_.store(true);
    } else {
      // No answer (a timeout, a lost connection) does not mean Redis did not run the read: if it
      // did, the entries it gave this consumer are in its pending list, and no `>` read returns
      // them again. The partitions' pending entries are read first next time, as a new owner's
      // are (entries this instance already holds are kept once by the replayer).
      std::lock_guard lock(mu_);
      for (int p : readable) {
        parts_[p].adopting = true;
        parts_[p].adopt_cursor = "0-0";
      }
    }
    read_attempts(f);
  });
}

void RedisStreamStorage::read_attempts(const std::shared_ptr<Fetch>& f) {
  for (const auto& [p, sid] : f->deleted)  // gone from the stream: nothing to deliver
    client_->execute({"XACK", parts_[p].key, options_.group, sid}, [](RedisReply) {});
  {
    std::lock_guard lock(mu_);
    for (const auto& g : f->got)
      if (out_.insert(g.id).second) ++parts_[partition_of(g.id)].held;
  }
  if (f->got.empty()) {
    f->done({});
    return;
  }
  std::vector<std::string> argv = {"HMGET", attempts_key_};
  for (const auto& g : f->got)
    argv.push_back(label_of(g.id));
  client_->execute(std::move(argv), [f](RedisReply r) {
    if (r.ok() && r.elements.size() == f->got.size()) {
      for (std::size_t i = 0; i < f->got.size(); ++i) {
        int n = 0;
        const auto& s = r.elements[i].str;
        std::from_chars(s.data(), s.data() + s.size(), n);
        f->got[i].attempts = n;
      }
    }
    f->done(std::move(f->got));
  });
}

void RedisStreamStorage::forget_locked(std::uint64_t id) {
  if (out_.erase(id) == 0) return;
  auto& part = parts_[static_cast<std::size_t>(partition_of(id)) % parts_.size()];
  if (part.held > 0) --part.held;
}

bool RedisStreamStorage::all_mine() {
  std::lock_guard lock(mu_);
  const auto now = SteadyClock::now();
  for (const auto& part : parts_)
    if (part.held > 0 && !(part.owned && now < part.sendable_until)) return false;
  return true;
}

bool RedisStreamStorage::still_mine(std::uint64_t id) {
  std::lock_guard lock(mu_);
  const auto p = static_cast<std::size_t>(partition_of(id));
  return p < parts_.size() && parts_[p].owned && SteadyClock::now() < parts_[p].sendable_until;
}

void RedisStreamStorage::let_go(std::vector<StoredRecord> records) {
  // They stay in the partition's pending list: its next owner takes them first. That may be
  // this instance again (a renewal that came late, under load): it reads the partition's
  // pending entries again before new ones, as a new owner would.
  std::lock_guard lock(mu_);
  for (const auto& r : records) {
    forget_locked(r.id);
    auto& part = parts_[static_cast<std::size_t>(partition_of(r.id)) % parts_.size()];
    part.adopting = true;
    part.adopt_cursor = "0-0";
  }
}

void RedisStreamStorage::mark_done(std::uint64_t id) {
  const std::string sid = to_stream_id(id);
  const int p = partition_of(id);
  {
    std::lock_guard lock(mu_);
    forget_locked(id);
  }
  client_->execute(
      {"EVAL", kDoneScript, "2", parts_[p].key, attempts_key_, options_.group, sid, label_of(id)},
      [this, id](RedisReply r) {
        if (!r.ok())  // it stays pending: its partition's next owner delivers it again, same key
          spdlog::warn("queue {}: the ack of write {} failed: {}", name_, label_of(id), r.str);
        else if (depth_.load() > 0)
          depth_.fetch_sub(1);
      });
}

bool RedisStreamStorage::bury(std::uint64_t id, const DeadLetter& letter) {
  const int p = partition_of(id);
  {
    std::lock_guard lock(mu_);
    forget_locked(id);
  }
  client_->execute({"EVAL", kBuryScript, "3", parts_[p].key, attempts_key_, dead_key_,
                    options_.group, to_stream_id(id), label_of(id), encode(letter)},
                   [this, id](RedisReply r) {
                     if (!r.ok())  // it stays pending: taken later and tried again
                       spdlog::warn("queue {}: write {} could not be moved to the dead letters: {}",
                                    name_, label_of(id), r.str);
                     else
                       dead_.fetch_add(1);
                   });
  return true;
}

void RedisStreamStorage::count_attempt(std::uint64_t id, int attempts) {
  client_->execute({"HSET", attempts_key_, label_of(id), std::to_string(attempts)},
                   [](RedisReply) {});
}

void RedisStreamStorage::tick() {
  std::vector<std::string> argv = {"EVAL", kLengthScript, std::to_string(options_.partitions)};
  for (const auto& part : parts_)
    argv.push_back(part.key);
  client_->execute(std::move(argv), [this](RedisReply r) {
    if (r.ok()) depth_.store(static_cast<std::size_t>(std::max(0LL, r.integer)));
  });
  client_->execute({"XLEN", dead_key_}, [this](RedisReply r) {
    if (r.ok()) dead_.store(static_cast<std::size_t>(std::max(0LL, r.integer)));
  });
  bool lease_due = false, trim_due = false, move = false;
  const bool up = up_.load();
  {
    std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    if (up && !lease_round_ && now - last_lease_ >= options_.lease / 3) {
      lease_round_ = true;
      last_lease_ = now;
      lease_due = true;
    }
    if (up && now - last_trim_ >= std::chrono::seconds(1)) {
      last_trim_ = now;
      trim_due = true;
    }
    // The spill: parked (its writes move into the stream) while Redis answers, or while a move
    // is under way; a move starts once the replayer holds none of its writes, so that a moved
    // write cannot overtake an earlier one of its key still being sent from here.
    spill_parked_->store(up || moving_);
    if (spill_ && up && !moving_ && spill_->held() == 0 && spill_->depth() > 0) {
      moving_ = true;
      move = true;
    }
    if (metrics_.partitions_owned != nullptr) {
      double n = 0;
      for (const auto& part : parts_)
        n += part.owned ? 1 : 0;
      metrics_.partitions_owned->Set(n);
    }
  }
  if (lease_due) leases();
  if (trim_due) trim_dead();
  if (move) move_spill();
}

void RedisStreamStorage::move_spill() {
  // A batch of up to 64 writes or 4 MiB, in the spill's order, appended in one script (all or
  // none): a key's writes keep their order in its partition.
  std::vector<StoredRecord> batch;
  std::size_t bytes = 0;
  while (batch.size() < 64 && bytes < (4u << 20)) {
    auto one = spill_->take_fresh(1);
    if (one.empty()) break;
    bytes += one[0].request->body.size() + 256;
    batch.push_back(std::move(one[0]));
  }
  if (batch.empty()) {
    std::lock_guard lock(mu_);
    moving_ = false;
    return;
  }
  std::vector<std::pair<int, std::string>> records;
  std::vector<std::string> argv;
  for (const auto& r : batch)
    records.emplace_back(route(*r.request), encode(*r.request));
  argv = append_argv(records);
  // Each record once, even when a batch is retried after a timeout Redis did run: a marker per
  // idempotency key for an hour. The attempts so far come along.
  const std::size_t first = argv.size() - 4 * batch.size();
  argv[first - 1] = options_.stream + ":moved:";
  for (std::size_t i = 0; i < batch.size(); ++i) {
    argv[first + 4 * i + 2] = std::to_string(batch[i].attempts);
    argv[first + 4 * i + 3] = batch[i].request->idempotency_key;
  }
  auto held = std::make_shared<std::vector<StoredRecord>>(std::move(batch));
  client_->execute(std::move(argv), [this, held](RedisReply r) {
    if (!r.ok() || r.elements.size() != held->size()) {
      spdlog::warn("queue {}: {} spilled writes could not move into the stream yet: {}", name_,
                   held->size(), r.str);
      spill_->let_go(std::move(*held));
      std::lock_guard lock(mu_);
      moving_ = false;
      return;
    }
    std::size_t added = 0;
    for (std::size_t i = 0; i < held->size(); ++i) {
      spill_->mark_done((*held)[i].id);
      added += r.elements[i].str.empty() ? 0 : 1;
    }
    depth_.fetch_add(added);
    if (metrics_.spill_moved != nullptr) metrics_.spill_moved->Increment(added);
    spdlog::info("queue {}: moved {} writes kept locally while redis was down into the stream{}",
                 name_, added,
                 added == held->size() ? ""
                                       : " (" + std::to_string(held->size() - added) +
                                             " were there from an earlier try)");
    move_spill();  // the next batch, until the spill is empty
  });
}

RedisReply RedisStreamStorage::call(std::vector<std::string> argv) {
  auto promise = std::make_shared<std::promise<RedisReply>>();
  auto future = promise->get_future();
  client_->execute(std::move(argv), [promise](RedisReply r) { promise->set_value(std::move(r)); });
  if (future.wait_for(options_.connection.command_timeout + std::chrono::seconds(1)) !=
      std::future_status::ready)
    return RedisReply::failure_of(RedisFailure::kTimeout, "redis did not answer");
  return future.get();
}

}  // namespace sluice::queue
