#include "queue/redis_stream_storage.hpp"

#include <prometheus/counter.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <charconv>
#include <future>

namespace sluice::queue {

using resilience::redis::RedisFailure;
using resilience::redis::RedisReply;

namespace {

// Refuses instead of trimming: the stream holds only undelivered writes (XDEL after the ack).
constexpr const char* kAppendScript = R"(
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return redis.error_reply('FULL') end
return redis.call('XADD', KEYS[1], '*', 'r', ARGV[2]))";
constexpr const char* kDoneScript = R"(
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1)";
constexpr const char* kBuryScript = R"(
redis.call('XADD', KEYS[3], '*', 'd', ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1)";

std::string default_consumer() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(::getpid());
}

// The value of `field` in a stream entry's [field, value, ...] array; null when absent.
const RedisReply* field(const RedisReply& fields, std::string_view name) {
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
    if (fields.elements[i].str == name) return &fields.elements[i + 1];
  return nullptr;
}

}  // namespace

struct RedisStreamStorage::Fetch {
  std::size_t max = 0;
  std::vector<StoredRecord> got;
  std::vector<std::string> deleted;  // entries in the PEL whose stream entry is gone
  std::function<void(std::vector<StoredRecord>)> done;

  // Adds [[id, [fields]] ...] entries; nil fields (a deleted entry) are acknowledged.
  void add(const RedisReply& entries, const std::string& queue) {
    for (const auto& e : entries.elements) {
      if (e.type != RedisReply::Type::kArray || e.elements.size() != 2) continue;
      const std::string& sid = e.elements[0].str;
      const RedisReply* r = field(e.elements[1], "r");
      if (r == nullptr) {
        deleted.push_back(sid);
        continue;
      }
      auto request = decode_request(r->str);
      if (!request) {
        spdlog::error("queue {}: stream entry {} cannot be decoded; left in the stream", queue,
                      sid);
        continue;
      }
      got.push_back({to_id(sid), std::make_shared<const QueuedRequest>(std::move(*request)), 0});
    }
  }
};

std::uint64_t RedisStreamStorage::to_id(std::string_view sid) {
  const auto dash = sid.find('-');
  std::uint64_t ms = 0, seq = 0;
  std::from_chars(sid.data(), sid.data() + std::min(dash, sid.size()), ms);
  if (dash != std::string_view::npos)
    std::from_chars(sid.data() + dash + 1, sid.data() + sid.size(), seq);
  return ms << 22 | (seq & ((1u << 22) - 1));
}

std::string RedisStreamStorage::to_stream_id(std::uint64_t id) {
  return std::to_string(id >> 22) + "-" + std::to_string(id & ((1u << 22) - 1));
}

RedisStreamStorage::RedisStreamStorage(RedisQueueOptions options, std::string queue_name,
                                       std::shared_ptr<QueueStorage> spill,
                                       RedisQueueMetrics metrics)
    : options_(std::move(options)),
      name_(std::move(queue_name)),
      dead_key_(options_.stream + ":dead"),
      attempts_key_(options_.stream + ":attempts"),
      spill_(std::move(spill)),
      metrics_(metrics) {
  if (options_.consumer.empty()) options_.consumer = default_consumer();
  resilience::redis::RedisConnectionHooks hooks;
  hooks.on_error = [this](const std::string& why) {
    if (up_.exchange(false))
      spdlog::warn("queue {}: redis is down ({}); writes go to on_redis_down: {}", name_, why,
                   options_.on_down == RedisQueueOptions::OnDown::kLocal ? "local" : "reject");
  };
  hooks.on_ready = [this] {
    if (!up_.exchange(true)) spdlog::info("queue {}: redis is up again", name_);
    // Not create_group() here: this may run before client_ is assigned. The next fetch does it.
    need_group_.store(true);
  };
  client_ =
      std::make_unique<resilience::redis::RedisClient>(options_.connection, 1, std::move(hooks));
}

RedisStreamStorage::~RedisStreamStorage() {
  client_->stop();
}

void RedisStreamStorage::create_group() {
  // From the stream's start (0): entries stored before the group existed are delivered too.
  client_->execute({"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"},
                   [name = name_](RedisReply r) {
                     if (r.is_error_reply() && r.str.rfind("BUSYGROUP", 0) != 0)
                       spdlog::error("queue {}: XGROUP CREATE: {}", name, r.str);
                   });
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
  client_->execute({"EVAL", kAppendScript, "1", options_.stream,
                    std::to_string(options_.max_length), encode(request)},
                   [this, keep, done = std::move(done)](RedisReply r) mutable {
                     if (r.failed()) {
                       // A timed-out XADD may still have been stored: the local copy is then a
                       // duplicate, delivered with the same idempotency key.
                       when_down(*keep, r.str, std::move(done));
                       return;
                     }
                     Appended a;
                     if (r.is_error_reply()) {
                       const bool full = r.str.rfind("FULL", 0) == 0;
                       a.error = full ? Appended::Error::kFull : Appended::Error::kIo;
                       a.error_text = full ? "the stream holds its max_length of " +
                                                 std::to_string(options_.max_length) + " writes"
                                           : "redis: " + r.str;
                     } else {
                       a.id = to_id(r.str);
                       a.label = r.str;
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
  if (need_group_.exchange(false)) create_group();  // pipelined before the reads below
  bool own = false;
  {
    std::lock_guard lock(mu_);
    own = !own_read_;
  }
  if (!own) {
    read_more(f);
    return;
  }
  // This consumer's entries from before a restart (same consumer name): "0" reads its history.
  client_->execute({"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                    std::to_string(f->max), "STREAMS", options_.stream, "0"},
                   [this, f](RedisReply r) {
                     if (r.ok()) {
                       std::lock_guard lock(mu_);
                       own_read_ = true;
                     }
                     if (r.ok() && !r.elements.empty() && r.elements[0].elements.size() == 2)
                       f->add(r.elements[0].elements[1], name_);
                     else if (r.is_error_reply() && r.str.rfind("NOGROUP", 0) == 0)
                       create_group();
                     read_more(f);
                   });
}

void RedisStreamStorage::read_more(const std::shared_ptr<Fetch>& f) {
  bool claim = false;
  std::string cursor;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_claim_ >= options_.claim_min_idle / 4) {
      claim = true;
      last_claim_ = now;
      cursor = claim_cursor_;
    }
  }
  if (!claim || f->got.size() >= f->max) {
    read_new(f);
    return;
  }
  client_->execute({"XAUTOCLAIM", options_.stream, options_.group, options_.consumer,
                    std::to_string(options_.claim_min_idle.count()), cursor, "COUNT",
                    std::to_string(f->max - f->got.size())},
                   [this, f](RedisReply r) {
                     if (r.ok() && r.elements.size() >= 2) {
                       const std::size_t before = f->got.size();
                       f->add(r.elements[1], name_);
                       if (f->got.size() > before)
                         spdlog::info("queue {}: claimed {} writes of a consumer idle for {} ms",
                                      name_, f->got.size() - before,
                                      options_.claim_min_idle.count());
                       std::lock_guard lock(mu_);
                       claim_cursor_ = r.elements[0].str;
                     }
                     read_new(f);
                   });
}

void RedisStreamStorage::read_new(const std::shared_ptr<Fetch>& f) {
  if (f->got.size() >= f->max) {
    read_attempts(f);
    return;
  }
  client_->execute({"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                    std::to_string(f->max - f->got.size()), "STREAMS", options_.stream, ">"},
                   [this, f](RedisReply r) {
                     if (r.ok() && !r.elements.empty() && r.elements[0].elements.size() == 2)
                       f->add(r.elements[0].elements[1], name_);
                     else if (r.is_error_reply() && r.str.rfind("NOGROUP", 0) == 0)
                       create_group();
                     read_attempts(f);
                   });
}

void RedisStreamStorage::read_attempts(const std::shared_ptr<Fetch>& f) {
  for (const auto& sid : f->deleted)  // gone from the stream: nothing to deliver
    client_->execute({"XACK", options_.stream, options_.group, sid}, [](RedisReply) {});
  if (f->got.empty()) {
    f->done({});
    return;
  }
  std::vector<std::string> argv = {"HMGET", attempts_key_};
  for (const auto& g : f->got)
    argv.push_back(to_stream_id(g.id));
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

void RedisStreamStorage::mark_done(std::uint64_t id) {
  const std::string sid = to_stream_id(id);
  client_->execute({"EVAL", kDoneScript, "2", options_.stream, attempts_key_, options_.group, sid},
                   [this, sid](RedisReply r) {
                     if (!r.ok())  // it stays pending: claimed and delivered again, same key
                       spdlog::warn("queue {}: the ack of write {} failed: {}", name_, sid, r.str);
                     else if (depth_.load() > 0)
                       depth_.fetch_sub(1);
                   });
}

bool RedisStreamStorage::bury(std::uint64_t id, const DeadLetter& letter) {
  const std::string sid = to_stream_id(id);
  client_->execute({"EVAL", kBuryScript, "3", options_.stream, attempts_key_, dead_key_,
                    options_.group, sid, encode(letter)},
                   [this, sid](RedisReply r) {
                     if (!r.ok())  // it stays pending: claimed later and tried again
                       spdlog::warn("queue {}: write {} could not be moved to the dead letters: {}",
                                    name_, sid, r.str);
                     else
                       dead_.fetch_add(1);
                   });
  return true;
}

void RedisStreamStorage::count_attempt(std::uint64_t id, int attempts) {
  client_->execute({"HSET", attempts_key_, to_stream_id(id), std::to_string(attempts)},
                   [](RedisReply) {});
}

void RedisStreamStorage::hold(const std::vector<std::uint64_t>& ids) {
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (ids.empty() || now - last_hold_ < options_.claim_min_idle / 3) return;
    last_hold_ = now;
  }
  std::vector<std::string> argv = {"XCLAIM", options_.stream, options_.group, options_.consumer,
                                   "0"};
  for (auto id : ids)
    argv.push_back(to_stream_id(id));
  argv.push_back("JUSTID");  // resets the idle time; the delivery count stays
  client_->execute(std::move(argv), [](RedisReply) {});
}

void RedisStreamStorage::tick() {
  client_->execute({"XLEN", options_.stream}, [this](RedisReply r) {
    if (r.ok()) depth_.store(static_cast<std::size_t>(std::max(0LL, r.integer)));
  });
  client_->execute({"XLEN", dead_key_}, [this](RedisReply r) {
    if (r.ok()) dead_.store(static_cast<std::size_t>(std::max(0LL, r.integer)));
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

std::vector<DeadLetterView> RedisStreamStorage::dead_letters() {
  std::vector<DeadLetterView> out;
  const RedisReply r = call({"XRANGE", dead_key_, "-", "+", "COUNT", "1000"});
  for (const auto& e : r.elements) {
    if (e.elements.size() != 2) continue;
    const RedisReply* d = field(e.elements[1], "d");
    if (d == nullptr) continue;
    if (auto letter = decode_dead_letter(d->str))
      out.push_back({to_id(e.elements[0].str), std::move(*letter)});
  }
  return out;
}

std::uint64_t RedisStreamStorage::requeue(std::uint64_t dead_id, std::string& error) {
  const std::string sid = to_stream_id(dead_id);
  const RedisReply r = call({"XRANGE", dead_key_, sid, sid});
  if (r.failed()) {
    error = "redis: " + r.str;
    return 0;
  }
  const RedisReply* d = r.elements.size() == 1 && r.elements[0].elements.size() == 2
                            ? field(r.elements[0].elements[1], "d")
                            : nullptr;
  auto letter = d != nullptr ? decode_dead_letter(d->str) : std::nullopt;
  if (!letter) {
    error = "no dead letter " + std::to_string(dead_id);
    return 0;
  }
  // Appended before the dead letter is deleted: a failure in between leaves both (a duplicate
  // with the same idempotency key), never neither.
  const RedisReply added = call({"EVAL", kAppendScript, "1", options_.stream,
                                 std::to_string(options_.max_length), encode(letter->request)});
  if (!added.ok()) {
    error = "the queue cannot take it: " + added.str;
    return 0;
  }
  call({"XDEL", dead_key_, sid});
  if (dead_.load() > 0) dead_.fetch_sub(1);
  depth_.fetch_add(1);
  return to_id(added.str);
}

bool RedisStreamStorage::drop(std::uint64_t dead_id) {
  const RedisReply r = call({"XDEL", dead_key_, to_stream_id(dead_id)});
  if (!r.ok() || r.integer != 1) return false;
  if (dead_.load() > 0) dead_.fetch_sub(1);
  return true;
}

}  // namespace sluice::queue
