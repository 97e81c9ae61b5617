// The Redis queue's partition owners (docs/RESILIENCE.md, "Partitions and owners"): each lease
// round an instance beats in the live set, renews the leases it holds, gives back what is over
// its share once it holds none of a partition's writes, and asks for free partitions up to
// ceil(partitions / live instances). Part of RedisStreamStorage (redis_stream_storage.hpp).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

#include "queue/redis_stream_storage.hpp"

namespace sluice::queue {

using resilience::redis::RedisReply;
using SteadyClock = std::chrono::steady_clock;

namespace {

// The lease of a partition: 1 renewed (ours), 2 acquired (it was free), 0 another's.
constexpr const char* kLeaseScript = R"(
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2)";
constexpr const char* kReleaseScript = R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)";
// The live instances: a heartbeat per lease round, by Redis's clock; returns how many there are.
constexpr const char* kMembersScript = R"(
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1]))";

}  // namespace

RedisStreamStorage::~RedisStreamStorage() {
  // Leases given back so that another instance takes the partitions at once (best effort: what
  // this instance held and did not finish is taken as pending entries by the next owner).
  std::vector<std::future<void>> released;
  for (int p : owned()) {
    auto done = std::make_shared<std::promise<void>>();
    released.push_back(done->get_future());
    client_->execute({"EVAL", kReleaseScript, "1", parts_[p].lease_key, owner_},
                     [done](RedisReply) { done->set_value(); });
  }
  for (auto& f : released)
    f.wait_for(std::chrono::milliseconds(200));
  client_->stop();
}

std::vector<int> RedisStreamStorage::owned() const {
  std::lock_guard lock(mu_);
  std::vector<int> out;
  for (int p = 0; p < options_.partitions; ++p)
    if (parts_[p].owned) out.push_back(p);
  return out;
}

void RedisStreamStorage::leases() {
  client_->execute(
      {"EVAL", kMembersScript, "1", members_key_, owner_, std::to_string(options_.lease.count())},
      [this](RedisReply r) {
        std::vector<std::pair<int, bool>> renewals;  // (partition, acquire)
        std::vector<int> releases, looks;
        {
          std::lock_guard lock(mu_);
          lease_round_ = false;
          if (!r.ok()) return;  // owned partitions stop being sendable when their time is up
          const int members = static_cast<int>(std::max(1LL, r.integer));
          const int target = (options_.partitions + members - 1) / members;
          int owned = 0;
          for (int p = 0; p < options_.partitions; ++p) {
            Partition& part = parts_[p];
            if (!part.owned) continue;
            if (part.releasing && part.held == 0) {
              releases.push_back(p);
              continue;
            }
            ++owned;
            renewals.emplace_back(p, false);
          }
          // Free partitions, from a place of this consumer's own so that instances starting
          // together ask for different ones first. Those another instance held at the last try
          // are asked for last, and the first one asked moves on with each round, so that every
          // free one is found.
          const int start =
              (partition_for(options_.consumer, options_.partitions) + lease_rounds_++) %
              options_.partitions;
          std::vector<bool> asked(parts_.size(), false);
          const bool short_of_share = owned < target;
          for (int pass = 0; pass < 2; ++pass) {
            for (int i = 0; i < options_.partitions && owned < target; ++i) {
              const int p = (start + i) % options_.partitions;
              if (parts_[p].owned || asked[p] || parts_[p].others != (pass == 1)) continue;
              ++owned;
              asked[p] = true;
              renewals.emplace_back(p, true);
            }
          }
          // The others not asked for: looked at (GET), so that one given back is asked for in
          // the next round rather than found by chance.
          for (int p = 0; p < options_.partitions && short_of_share; ++p)
            if (!parts_[p].owned && !asked[p]) looks.push_back(p);
          // More than a fair share (another instance joined): give one back once drained.
          for (int p = options_.partitions - 1; p >= 0 && owned > target; --p) {
            if (!parts_[p].owned || parts_[p].releasing) continue;
            parts_[p].releasing = true;
            --owned;
            spdlog::info("queue {}: giving partition {} back ({} instances share {} partitions)",
                         name_, p, members, options_.partitions);
          }
        }
        for (int p : releases)
          release(p);
        for (int p : looks)
          client_->execute({"GET", parts_[p].lease_key}, [this, p](RedisReply r) {
            if (!r.ok()) return;
            std::lock_guard lock(mu_);
            parts_[p].others = r.type != RedisReply::Type::kNil;
          });
        for (const auto& [p, acquire] : renewals)
          renew(p, acquire);
      });
}

void RedisStreamStorage::renew(int p, bool acquire) {
  const auto sent = SteadyClock::now();
  client_->execute({"EVAL", kLeaseScript, "1", parts_[p].lease_key, owner_,
                    std::to_string(options_.lease.count())},
                   [this, p, sent, acquire](RedisReply r) {
                     std::lock_guard lock(mu_);
                     Partition& part = parts_[p];
                     if (!r.ok()) return;  // not renewed: sendable until its time is up
                     part.others = r.integer == 0;
                     if (r.integer == 0) {
                       if (part.owned)
                         spdlog::warn("queue {}: partition {} belongs to another instance now",
                                      name_, p);
                       part.owned = false;
                       part.releasing = false;
                       return;
                     }
                     // The lease lasts `lease` from when Redis ran the command, which is after
                     // `sent`: this instance sends the partition's writes until half of it is gone,
                     // so that it has stopped well before another instance can take the partition.
                     part.sendable_until = sent + options_.lease / 2;
                     if (r.integer == 2) {  // free before: whatever is pending in it comes first
                       if (!part.owned || !acquire)
                         spdlog::info("queue {}: took partition {} (lease {} ms)", name_, p,
                                      options_.lease.count());
                       part.owned = true;
                       part.adopting = true;
                       part.adopt_cursor = "0-0";
                     }
                   });
}

void RedisStreamStorage::release(int p) {
  {
    std::lock_guard lock(mu_);
    parts_[p].owned = false;
    parts_[p].releasing = false;
  }
  client_->execute({"EVAL", kReleaseScript, "1", parts_[p].lease_key, owner_},
                   [this, p](RedisReply r) {
                     if (r.ok()) spdlog::info("queue {}: gave partition {} back", name_, p);
                   });
}

}  // namespace sluice::queue
