// The Redis queue's dead letters (`<stream>:dead`): retention by length and age, each letter
// dropped logged and counted; the admin's list, requeue and drop. Part of RedisStreamStorage
// (redis_stream_storage.hpp).
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "queue/redis_stream_entry.hpp"
#include "queue/redis_stream_storage.hpp"

namespace sluice::queue {

using resilience::redis::RedisReply;

namespace {

// The dead letters' retention: at most ARGV[3] letters per call that are older than ARGV[2] ms
// (0: no age bound), then the oldest beyond ARGV[1] letters; returns {by_count, by_age}, each a
// list of the dropped entries (so that each is logged).
constexpr const char* kTrimDeadScript = R"(
local by_age, by_count = {}, {}
local limit = tonumber(ARGV[3])
if tonumber(ARGV[2]) > 0 then
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', ARGV[2], 'COUNT', limit)) do
    redis.call('XDEL', KEYS[1], e[1])
    by_age[#by_age + 1] = e
  end
end
local over = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if over > 0 then
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', math.min(over, limit))) do
    redis.call('XDEL', KEYS[1], e[1])
    by_count[#by_count + 1] = e
  end
end
return {by_count, by_age})";

}  // namespace

void RedisStreamStorage::trim_dead() {
  std::string cutoff = "0";
  if (options_.dead_max_age.count() > 0) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    cutoff = std::to_string(now_ms - options_.dead_max_age.count());
  }
  client_->execute(
      {"EVAL", kTrimDeadScript, "1", dead_key_, std::to_string(options_.dead_max_length), cutoff,
       "64"},
      [this](RedisReply r) {
        if (!r.ok() || r.elements.size() != 2) return;
        for (int which = 0; which < 2; ++which) {
          for (const auto& e : r.elements[which].elements) {
            if (e.elements.size() != 2) continue;
            const RedisReply* d = entry_field(e.elements[1], "d");
            auto letter = d != nullptr ? decode_dead_letter(d->str) : std::nullopt;
            spdlog::warn(
                "queue {}: dead letter {} dropped by retention ({}): {} {}, Idempotency-Key {}, "
                "{} (status {})",
                name_, e.elements[0].str,
                which == 0 ? "dead_max_length " + std::to_string(options_.dead_max_length)
                           : "dead_max_age_ms " + std::to_string(options_.dead_max_age.count()),
                letter ? letter->request.method : "?", letter ? letter->request.target : "?",
                letter ? letter->request.idempotency_key : "?", letter ? letter->reason : "?",
                letter ? letter->status : 0);
            prometheus::Counter* c =
                which == 0 ? metrics_.dead_dropped_count : metrics_.dead_dropped_age;
            if (c != nullptr) c->Increment();
            if (dead_.load() > 0) dead_.fetch_sub(1);
          }
        }
      });
}

std::vector<DeadLetterView> RedisStreamStorage::dead_letters() {
  std::vector<DeadLetterView> out;
  const RedisReply r = call({"XRANGE", dead_key_, "-", "+", "COUNT", "1000"});
  for (const auto& e : r.elements) {
    if (e.elements.size() != 2) continue;
    const RedisReply* d = entry_field(e.elements[1], "d");
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
                            ? entry_field(r.elements[0].elements[1], "d")
                            : nullptr;
  auto letter = d != nullptr ? decode_dead_letter(d->str) : std::nullopt;
  if (!letter) {
    error = "no dead letter " + std::to_string(dead_id);
    return 0;
  }
  // Appended before the dead letter is deleted: a failure in between leaves both (a duplicate
  // with the same idempotency key), never neither.
  const int p = route(letter->request);
  const RedisReply added = call(append_argv({{p, encode(letter->request)}}));
  if (!added.ok() || added.elements.size() != 1) {
    error = "the queue cannot take it: " + added.str;
    return 0;
  }
  call({"XDEL", dead_key_, sid});
  if (dead_.load() > 0) dead_.fetch_sub(1);
  depth_.fetch_add(1);
  return to_id(added.elements[0].str, p);
}

bool RedisStreamStorage::drop(std::uint64_t dead_id) {
  const RedisReply r = call({"XDEL", dead_key_, to_stream_id(dead_id)});
  if (!r.ok() || r.integer != 1) return false;
  if (dead_.load() > 0) dead_.fetch_sub(1);
  return true;
}

}  // namespace sluice::queue
