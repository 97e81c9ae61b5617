// A Redis-backed queue (`queue: { backend: redis }`) shared by several sluice instances, through
// the real binary, a real redis-server and real upstreams: each key's writes arrive in order
// while two instances drain and one is killed (partitions with one leased owner each); writes
// kept locally while Redis was down move into the stream and another instance delivers them;
// the dead-letter stream's retention; a wedged Redis; max_attempts counted across instances; a
// full stream; a Redis with a password.
#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "support/cpu_waits.hpp"
#include "support/queue_redis.hpp"
#include "support/redis_test_server.hpp"
#include "support/required_tool.hpp"
#include "support/sluice_process.hpp"
#include "support/write_upstream.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

double metric(const std::string& text, const std::string& series) {
  const auto at = text.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 1));
}

// On a failure: how long the gateway's threads went without a CPU (runnable, not running) since
// `before`, so that a failure on a starved machine says so.
std::string cpu_wait_note(const SluiceProcess& gw, const std::map<std::string, long long>& before) {
  const auto waited = most_waited(before, run_queue_waits(gw.pid()));
  return "\nthe gateway's longest wait for a CPU: " +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
         " ms\n";
}

// Per account: the bodies in the order of their first arrival, and how often each arrived.
struct Arrivals {
  std::map<std::string, std::vector<std::string>> first;
  std::map<std::string, int> copies;  // by idempotency key
};
Arrivals arrivals(const std::vector<Received>& got) {
  Arrivals a;
  for (const auto& g : got) {
    if (++a.copies[g.key] == 1) a.first[g.account].push_back(g.body);
  }
  return a;
}

TEST(RedisQueuePartitions, TwoInstancesKeepEveryKeysOrderAndOneKilledMidDrainLosesNothing) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;  // down while the writes come in
  up.delay_ms = 30;
  TempDir dir;
  const auto make = [&](const std::string& name) {
    return std::make_unique<SluiceProcess>(
        redis_queue_config(up.port(), redis.port(), ", consumer: " + name + ", partitions: 4",
                           "              concurrency: 4\n"
                           "              order_by: header\n"
                           "              order_header: X-Account\n"
                           "              dir: " +
                               dir.file(name) + "\n"));
  };
  auto a = make("a");
  auto b = make("b");
  const std::string owned = R"(sluice_queue_partitions_owned{queue="later"})";
  ASSERT_TRUE(eventually(
      [&] { return metric(metrics_text(*a), owned) == 2 && metric(metrics_text(*b), owned) == 2; },
      10s))
      << "two instances share four partitions: a " << metric(metrics_text(*a), owned) << ", b "
      << metric(metrics_text(*b), owned) << "\n"
      << a->log() << b->log();

  // 7 accounts' writes interleaved, through both instances in turn (one client after another:
  // the order of arrival is the order sent); 7 is prime to 2 instances: each account's writes
  // come through both.
  std::map<std::string, std::vector<std::string>> sent;
  std::set<std::string> accepted;
  httplib::Client ca("127.0.0.1", a->port()), cb("127.0.0.1", b->port());
  for (int i = 0; i < 161; ++i) {
    const std::string account = "acct-" + std::to_string(i % 7);
    const std::string body = account + "-w" + std::to_string(i / 7);
    auto r = (i % 2 == 0 ? ca : cb).Post("/w", {{"X-Account", account}}, body, "text/plain");
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->status, 202) << r->body;
    accepted.insert(r->get_header_value("Idempotency-Key"));
    sent[account].push_back(body);
  }
  ASSERT_EQ(accepted.size(), 161u);
  EXPECT_EQ(stream_length(redis, 4), 161);

  up.start();
  ASSERT_TRUE(up.wait_for(30, 15s)) << up.got().size();
  EXPECT_EQ(a->stop(9), -1) << "killed in the middle of its drain";
  const std::size_t at_kill = up.got().size();
  EXPECT_LT(at_kill, 140u) << "the kill came too late to be mid-drain";
  ASSERT_TRUE(eventually([&] { return up.keys() == accepted; }, 30s))
      << up.got().size() << " arrived\n"
      << b->log();
  std::this_thread::sleep_for(300ms);  // nothing more may come
  const Arrivals got = arrivals(up.got());
  EXPECT_EQ(got.first, sent) << "every account's writes in the order they were sent";
  // At least once: a write A had sent when it was killed comes again from B, with the same key.
  int duplicates = 0;
  for (const auto& [key, n] : got.copies) {
    EXPECT_TRUE(accepted.count(key)) << "a write nobody sent, or with a new key: " << key;
    EXPECT_LE(n, 2) << key;
    duplicates += n - 1;
  }
  EXPECT_LE(duplicates, 8) << "at most what A had in flight or answered and not acknowledged";
  std::printf("  %zu delivered when A was killed, %d duplicate(s)\n", at_kill, duplicates);
  EXPECT_NE(b->log().find("took partition"), std::string::npos) << b->log();
  EXPECT_TRUE(eventually([&] { return stream_length(redis, 4) == 0; }, 3s))
      << stream_length(redis, 4);
  EXPECT_EQ(pending_count(redis, 4), 0);
}

TEST(RedisQueuePartitions, WritesKeptLocallyWhileRedisWasDownMoveIntoTheStreamForAnyInstance) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;  // down all along while A runs
  TempDir dir;
  const std::string queue_extra =
      "              order_by: header\n              order_header: X-Account\n";
  auto a = std::make_unique<SluiceProcess>(redis_queue_config(
      up.port(), redis.port(), ", consumer: a, partitions: 2, on_redis_down: local",
      queue_extra + "              dir: " + dir.file("a") + "\n"));
  ASSERT_TRUE(eventually([&] { return queue_stats(*a)["backend_up"] == true; }, 3s));
  redis.kill();
  httplib::Client c("127.0.0.1", a->port());
  std::map<std::string, std::vector<std::string>> sent;
  std::set<std::string> accepted;
  for (int i = 0; i < 12; ++i) {
    const std::string account = i % 3 == 0 ? "acct-x" : "acct-y";
    const std::string body = account + "-" + std::to_string(i);
    auto r = c.Post("/w", {{"X-Account", account}}, body, "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    EXPECT_EQ(r->get_header_value("X-Sluice-Queued").rfind("local-", 0), 0u);
    accepted.insert(r->get_header_value("Idempotency-Key"));
    sent[account].push_back(body);
  }
  ASSERT_TRUE(redis.start());  // an empty Redis: the writes are only on A's disk
  ASSERT_TRUE(eventually([&] { return stream_length(redis, 2) == 12; }, 10s))
      << stream_length(redis, 2) << "\n"
      << a->log();
  // (Counted once Redis has answered the move, a moment after the stream shows it.)
  const std::string moved = R"(sluice_queue_spill_moved_total{queue="later"})";
  EXPECT_TRUE(eventually([&] { return metric(metrics_text(*a), moved) == 12; }, 3s))
      << metrics_text(*a);
  EXPECT_TRUE(eventually([&] { return queue_stats(*a)["depth"] == 12; }, 3s))
      << queue_stats(*a).dump() << " (none left locally, none counted twice)";
  EXPECT_TRUE(eventually(
      [&] { return a->log().find("moved 12 writes kept locally") != std::string::npos; }, 3s))
      << a->log();
  EXPECT_EQ(a->stop(9), -1);  // A is gone for good: its disk no longer matters

  auto b = std::make_unique<SluiceProcess>(redis_queue_config(
      up.port(), redis.port(), ", consumer: b, partitions: 2, on_redis_down: local",
      queue_extra + "              dir: " + dir.file("b") + "\n"));
  up.start();
  ASSERT_TRUE(up.wait_for(12, 15s)) << up.got().size() << "\n" << b->log();
  std::this_thread::sleep_for(300ms);
  const Arrivals got = arrivals(up.got());
  EXPECT_EQ(got.first, sent) << "in their order per account";
  for (const auto& [key, n] : got.copies) {
    EXPECT_TRUE(accepted.count(key)) << "the idempotency key the client got: " << key;
    EXPECT_EQ(n, 1) << key;
  }
  EXPECT_EQ(got.copies.size(), 12u);
  EXPECT_TRUE(eventually([&] { return stream_length(redis, 2) == 0; }, 3s));
}

// Each bound on its own gateway, so that which bound drops a letter never depends on how soon
// the gateway runs: with both bounds on one gateway, a gateway that does not run for 2.5 s
// between the first dead letter and the others (a starved machine: 20 s once, beside a CPU hog)
// rightly drops the first by age before the length bound sees five, and "two dropped by
// length" never comes. Here the length bound has no age bound beside it, and the age bound
// sees no more letters than dead_max_length.
TEST(RedisQueuePartitions, DeadLettersBeyondTheRetentionBoundsAreDroppedLoggedAndCounted) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;
  up.status_for = [](const Received&) { return 422; };
  const std::string length =
      R"(sluice_queue_dead_letters_dropped_total{bound="length",queue="later"})";
  const std::string age = R"(sluice_queue_dead_letters_dropped_total{bound="age",queue="later"})";
  const std::string dead = std::string(kQueueStream) + ":dead";
  std::vector<std::string> keys;
  {
    SluiceProcess gw(redis_queue_config(
        up.port(), redis.port(), ", on_redis_down: reject, partitions: 1, dead_max_length: 3",
        "              concurrency: 1\n"));
    const auto waits = run_queue_waits(gw.pid());
    httplib::Client c("127.0.0.1", gw.port());
    for (int i = 0; i < 5; ++i) {
      auto r = c.Post("/w", "doomed-" + std::to_string(i), "text/plain");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 202) << r->body;
      keys.push_back(r->get_header_value("Idempotency-Key"));
    }
    up.start();
    // Five final 4xx: five dead letters, the two oldest then dropped by dead_max_length: 3. (A
    // trim once a second; the limit is for a starved machine, it returns as soon as it holds.)
    ASSERT_TRUE(eventually([&] { return metric(metrics_text(gw), length) == 2; }, 30s))
        << metrics_text(gw) << gw.log() << cpu_wait_note(gw, waits);
    EXPECT_EQ(redis.command({"XLEN", dead}), "3");
    EXPECT_EQ(metric(metrics_text(gw), age), 0) << "no age bound configured";
    httplib::Client admin("127.0.0.1", gw.admin_port());
    const json letters =
        json::parse(admin.Get("/queues/later/dead", kQueueAdmin)->body)["dead_letters"];
    ASSERT_EQ(letters.size(), 3u);
    EXPECT_EQ(letters[0]["idempotency_key"], keys[2]) << "the newest are kept";
    for (int i = 0; i < 2; ++i)
      EXPECT_NE(
          gw.log().find("dropped by retention (dead_max_length 3): POST /w, Idempotency-Key " +
                        keys[i]),
          std::string::npos)
          << gw.log();
    gw.stop();
  }
  // Another instance with both bounds: the three letters are within dead_max_length, so only
  // dead_max_age_ms drops them, each logged and counted.
  SluiceProcess gw(redis_queue_config(
      up.port(), redis.port(),
      ", on_redis_down: reject, partitions: 1, dead_max_length: 3, dead_max_age_ms: 2500",
      "              concurrency: 1\n"));
  const auto waits = run_queue_waits(gw.pid());
  ASSERT_TRUE(eventually([&] { return metric(metrics_text(gw), age) == 3; }, 30s))
      << metrics_text(gw) << gw.log() << cpu_wait_note(gw, waits);
  EXPECT_EQ(metric(metrics_text(gw), length), 0);
  EXPECT_EQ(redis.command({"XLEN", dead}), "0");
  for (int i = 2; i < 5; ++i)
    EXPECT_NE(gw.log().find("(dead_max_age_ms 2500): POST /w, Idempotency-Key " + keys[i]),
              std::string::npos)
        << gw.log();
  EXPECT_TRUE(eventually([&] { return queue_stats(gw)["dead_letters"] == 0; }, 3s));
}

TEST(RedisQueuePartitions, AWedgedRedisIsLeftAndTheQueueDrainsOnceItAnswersAgain) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;  // down
  TempDir dir;
  SluiceProcess gw(redis_queue_config(up.port(), redis.port(),
                                      ", partitions: 2, on_redis_down: local, "
                                      "command_timeout_ms: 200",
                                      "              dir: " + dir.file("spill") + "\n"));
  ASSERT_TRUE(eventually([&] { return queue_stats(gw)["backend_up"] == true; }, 3s));
  httplib::Client c("127.0.0.1", gw.port());
  std::set<std::string> accepted;
  for (int i = 0; i < 6; ++i) {
    auto r = c.Post("/w", "before-" + std::to_string(i), "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    accepted.insert(r->get_header_value("Idempotency-Key"));
  }
  EXPECT_EQ(stream_length(redis, 2), 6);
  // Redis takes commands and answers none for 3 s (the connections stay open).
  EXPECT_EQ(redis.command({"CLIENT", "PAUSE", "3000", "ALL"}), "OK");
  ASSERT_TRUE(eventually([&] { return queue_stats(gw)["backend_up"] == false; }, 2500ms))
      << "the wedged connection is left: " << queue_stats(gw).dump();
  auto r = c.Post("/w", "while-wedged", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  accepted.insert(r->get_header_value("Idempotency-Key"));
  up.start();
  ASSERT_TRUE(eventually([&] { return queue_stats(gw)["backend_up"] == true; }, 10s)) << gw.log();
  ASSERT_TRUE(eventually([&] { return up.keys() == accepted; }, 15s))
      << up.got().size() << " of " << accepted.size() << "\n"
      << gw.log();
  EXPECT_TRUE(eventually([&] { return stream_length(redis, 2) == 0; }, 3s));
  EXPECT_NE(gw.log().find("redis is up again"), std::string::npos);
}

TEST(RedisQueuePartitions, MaxAttemptsAreCountedAcrossInstances) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;
  up.status_for = [](const Received&) { return 500; };
  const auto make = [&](const std::string& name) {
    std::string config = redis_queue_config(
        up.port(), redis.port(), ", consumer: " + name + ", partitions: 1, on_redis_down: reject",
        "              max_attempts: 4\n");
    // A backoff long enough to see where the attempts stand between two of them.
    config.replace(config.find("backoff_base_ms: 50"), 19, "backoff_base_ms: 700");
    config.replace(config.find("backoff_max_ms: 200"), 19, "backoff_max_ms: 700");
    return std::make_unique<SluiceProcess>(config);
  };
  auto a = make("a");
  const std::string owned = R"(sluice_queue_partitions_owned{queue="later"})";
  ASSERT_TRUE(eventually([&] { return metric(metrics_text(*a), owned) == 1; }, 5s));
  auto b = make("b");
  httplib::Client c("127.0.0.1", a->port());
  auto r = c.Post("/w", "never-accepted", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string key = r->get_header_value("Idempotency-Key");
  up.start();
  ASSERT_TRUE(eventually([&] { return up.all().size() >= 2; }, 10s));
  // A's second attempt counted in Redis, then A is gone; B goes on from 2.
  ASSERT_TRUE(eventually(
      [&] {
        return redis.command({"HVALS", std::string(kQueueStream) + ":attempts"}) == "2";
      },
      2s))
      << redis.command({"HGETALL", std::string(kQueueStream) + ":attempts"});
  EXPECT_EQ(a->stop(9), -1);
  const std::size_t by_a = up.all().size();
  EXPECT_EQ(by_a, 2u) << "A tried once more before the kill";
  const std::string dead = std::string(kQueueStream) + ":dead";
  ASSERT_TRUE(eventually([&] { return redis.command({"XLEN", dead}) == "1"; }, 15s)) << b->log();
  std::this_thread::sleep_for(1s);  // no further attempt
  EXPECT_EQ(up.all().size(), 4u) << "exactly max_attempts over both instances";
  for (const auto& g : up.all())
    EXPECT_EQ(g.key, key);
  httplib::Client admin("127.0.0.1", b->admin_port());
  const json letters =
      json::parse(admin.Get("/queues/later/dead", kQueueAdmin)->body)["dead_letters"];
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0]["reason"], "max_attempts");
  EXPECT_EQ(letters[0]["attempts"], 4);
  EXPECT_EQ(redis.command({"HLEN", std::string(kQueueStream) + ":attempts"}), "0");
}

TEST(RedisQueuePartitions, AFullStreamAnswers503WithRetryAfterAndLosesNothingAccepted) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;  // down
  SluiceProcess gw(redis_queue_config(up.port(), redis.port(),
                                      ", partitions: 3, max_length: 5, on_redis_down: reject",
                                      "              retry_after_s: 7\n"));
  httplib::Client c("127.0.0.1", gw.port());
  std::set<std::string> accepted;
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    auto r = c.Post("/w", "w" + std::to_string(i), "text/plain");
    ASSERT_TRUE(r);
    if (r->status == 202) {
      accepted.insert(r->get_header_value("Idempotency-Key"));
      continue;
    }
    ++refused;
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_EQ(r->get_header_value("Retry-After"), "7");
    EXPECT_NE(r->body.find("queue_full"), std::string::npos) << r->body;
  }
  EXPECT_EQ(accepted.size(), 5u) << "max_length over all partitions";
  EXPECT_EQ(refused, 3);
  EXPECT_EQ(stream_length(redis, 3), 5);
  up.start();
  ASSERT_TRUE(up.wait_for(5, 10s));
  std::this_thread::sleep_for(300ms);
  const std::set<std::string> delivered = up.keys();
  EXPECT_EQ(delivered, accepted);
  EXPECT_EQ(up.got().size(), 5u);
}

TEST(RedisQueuePartitions, ARedisWithAPasswordIsUsedThroughTheLimitersConnectionKeys) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis({"--requirepass", "s3cret-q"});
  ASSERT_TRUE(redis.start());
  WriteUpstream up;  // down
  {
    // The wrong password: Redis is down for the queue (the declared policy), never a hang.
    SluiceProcess wrong(redis_queue_config(
        up.port(), redis.port(), ", password: nope, on_redis_down: reject, partitions: 2", ""));
    httplib::Client c("127.0.0.1", wrong.port());
    auto r = c.Post("/w", "refused", "text/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_TRUE(eventually([&] { return queue_stats(wrong)["backend_up"] == false; }, 3s));
  }
  ::setenv("SLUICE_TEST_QUEUE_REDIS_PW", "s3cret-q", 1);
  SluiceProcess gw(redis_queue_config(
      up.port(), redis.port(),
      ", password_env: SLUICE_TEST_QUEUE_REDIS_PW, on_redis_down: reject, partitions: 2", ""));
  ASSERT_TRUE(eventually([&] { return queue_stats(gw)["backend_up"] == true; }, 3s));
  httplib::Client c("127.0.0.1", gw.port());
  std::set<std::string> accepted;
  for (int i = 0; i < 4; ++i) {
    auto r = c.Post("/w", "w" + std::to_string(i), "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    EXPECT_TRUE(
        std::regex_match(r->get_header_value("X-Sluice-Queued"), std::regex("\\d+-\\d+@\\d")));
    accepted.insert(r->get_header_value("Idempotency-Key"));
  }
  EXPECT_EQ(stream_length(redis, 2, "s3cret-q"), 4);
  up.start();
  ASSERT_TRUE(up.wait_for(4, 10s)) << gw.log();
  const std::set<std::string> delivered = up.keys();
  EXPECT_EQ(delivered, accepted);
  EXPECT_TRUE(eventually([&] { return stream_length(redis, 2, "s3cret-q") == 0; }, 3s));
}

}  // namespace
}  // namespace sluice::testing
