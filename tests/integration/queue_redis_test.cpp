// Store and forward on a Redis stream (`queue: { backend: redis }`) through the real binary, a
// real redis-server and real upstreams: writes during an outage kept in the stream and delivered
// in order once per key (two instances, leases, moves: queue_redis_partitions_test.cpp); Redis
// down with on_redis_down: local (202,
// delivered later from the local log) and reject (503 + Retry-After, at once); a 4xx on replay
// kept in the dead-letter stream and delivered after an admin requeue; config errors.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "support/queue_redis.hpp"
#include "support/redis_test_server.hpp"
#include "support/required_tool.hpp"
#include "support/sluice_process.hpp"
#include "support/write_upstream.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const httplib::Headers& kAdmin = kQueueAdmin;
const char* kStream = kQueueStream;

std::string config(int upstream_port, int redis_port, const std::string& redis_extra,
                   const std::string& queue_extra) {
  return redis_queue_config(upstream_port, redis_port, redis_extra, queue_extra);
}

std::string metrics(const SluiceProcess& gw) {
  return metrics_text(gw);
}

TEST(RedisQueue, WritesDuringAnOutageAreKeptInTheStreamAndDeliveredInOrderOncePerKey) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;  // down
  TempDir dir;
  SluiceProcess gw(config(up.port(), redis.port(), ", consumer: only",
                          "              order_by: header\n              order_header: X-Account\n"
                          "              dir: " +
                              dir.file("spill")));
  httplib::Client c("127.0.0.1", gw.port());
  std::map<std::string, std::vector<std::string>> sent;
  std::set<std::string> keys;
  for (int i = 0; i < 24; ++i) {
    const std::string account = i % 3 == 0 ? "acct-b" : "acct-a";
    const std::string body = "write-" + std::to_string(i);
    auto r = c.Post("/orders", {{"X-Account", account}}, body, "text/plain");
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->status, 202) << i << ": " << r->body;
    EXPECT_TRUE(
        std::regex_match(r->get_header_value("X-Sluice-Queued"), std::regex("\\d+-\\d+@\\d")))
        << "a stream id: " << r->get_header_value("X-Sluice-Queued");
    keys.insert(r->get_header_value("Idempotency-Key"));
    sent[account].push_back(body);
  }
  EXPECT_EQ(keys.size(), 24u);
  EXPECT_EQ(stream_length(redis), 24) << "stored in Redis, not locally";
  EXPECT_TRUE(eventually([&] { return queue_stats(gw)["depth"] == 24; }, 2s))
      << queue_stats(gw).dump();
  EXPECT_EQ(queue_stats(gw)["backend"], "redis");

  up.start();
  ASSERT_TRUE(up.wait_for(24, 15s)) << up.got().size() << " of 24";
  std::this_thread::sleep_for(400ms);  // nothing more may come
  const auto got = up.got();
  ASSERT_EQ(got.size(), 24u) << "each write exactly once";
  std::map<std::string, std::vector<std::string>> arrived;
  std::set<std::string> arrived_keys;
  for (const auto& g : got) {
    arrived[g.account].push_back(g.body);
    arrived_keys.insert(g.key);
    EXPECT_FALSE(g.replay.empty());
  }
  EXPECT_EQ(arrived, sent) << "per account, in arrival order";
  EXPECT_EQ(arrived_keys, keys);
  EXPECT_TRUE(eventually([&] { return stream_length(redis) == 0; }, 3s))
      << "acknowledged and deleted: " << stream_length(redis);
  EXPECT_EQ(pending_count(redis), 0);
  const std::string m = metrics(gw);
  EXPECT_NE(m.find(R"(sluice_queue_replayed_total{queue="later",result="done"} 24)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(sluice_queue_backend_up{queue="later"} 1)"), std::string::npos);
}

TEST(RedisQueue, RedisDownWithLocalKeepsTheWriteLocallyAnswers202AndDeliversItLater) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;
  TempDir dir;
  SluiceProcess gw(config(up.port(), redis.port(), ", on_redis_down: local",
                          "              dir: " + dir.file("spill") + "\n"));
  ASSERT_TRUE(eventually([&] { return queue_stats(gw)["backend_up"] == true; }, 2s));
  redis.kill();
  httplib::Client c("127.0.0.1", gw.port());
  std::set<std::string> accepted;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.Post("/w", "while-redis-is-down-" + std::to_string(i), "text/plain");
    ASSERT_TRUE(r);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "never a hung request";
    ASSERT_EQ(r->status, 202) << r->body;
    EXPECT_EQ(r->get_header_value("X-Sluice-Queued").rfind("local-", 0), 0u)
        << r->get_header_value("X-Sluice-Queued");
    accepted.insert(r->get_header_value("Idempotency-Key"));
  }
  EXPECT_FALSE(queue_stats(gw)["backend_up"].get<bool>());
  const std::string m = metrics(gw);
  EXPECT_NE(m.find(R"(sluice_queue_redis_down_total{queue="later",result="local"} 5)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(sluice_queue_backend_up{queue="later"} 0)"), std::string::npos);
  EXPECT_NE(gw.log().find("redis is down"), std::string::npos);
  up.start();
  ASSERT_TRUE(up.wait_for(5, 10s)) << gw.log();
  const std::set<std::string> delivered = up.keys();
  EXPECT_EQ(delivered, accepted);

  // Redis back: the next write goes to the stream again.
  ASSERT_TRUE(redis.start());
  ASSERT_TRUE(eventually([&] { return queue_stats(gw)["backend_up"] == true; }, 5s));
  up.stop();
  auto r = c.Post("/w", "after-redis-is-back", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202);
  EXPECT_TRUE(std::regex_match(r->get_header_value("X-Sluice-Queued"), std::regex("\\d+-\\d+@\\d")))
      << r->get_header_value("X-Sluice-Queued");
}

TEST(RedisQueue, RedisDownWithRejectAnswers503WithRetryAfterAtOnce) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;  // never started: nothing listens on its port
  WriteUpstream up;
  SluiceProcess gw(config(up.port(), redis.port(),
                          ", on_redis_down: reject, connect_timeout_ms: 200",
                          "              retry_after_s: 9\n"));
  httplib::Client c("127.0.0.1", gw.port());
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.Post("/w", "refused", "text/plain");
    ASSERT_TRUE(r);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "never a hung request";
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_EQ(r->get_header_value("Retry-After"), "9");
    EXPECT_NE(r->body.find("queue_backend_down"), std::string::npos) << r->body;
  }
  const std::string m = metrics(gw);
  EXPECT_NE(m.find(R"(sluice_queue_redis_down_total{queue="later",result="rejected"} 3)"),
            std::string::npos)
      << m;
  EXPECT_NE(gw.log().find("a write was refused, redis is down"), std::string::npos);
}

TEST(RedisQueue, ASlowRedisCostsAWriteAtMostTheCommandTimeoutAndLosesNothing) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;  // down
  TempDir dir;
  SluiceProcess gw(config(up.port(), redis.port(),
                          ", on_redis_down: local, command_timeout_ms: 300",
                          "              dir: " + dir.file("spill") + "\n"));
  ASSERT_TRUE(eventually([&] { return queue_stats(gw)["backend_up"] == true; }, 2s));
  // Redis answers nothing for 2 s (the connections stay up): the XADD times out. CLIENT PAUSE
  // is in effect once it answers OK; a DEBUG SLEEP sent from another thread 100 ms before the
  // write was not always (the write then went to the stream: seen once in 30 runs beside the
  // fuzz job). The PING answers when the pause is over.
  ASSERT_EQ(redis.command({"CLIENT", "PAUSE", "2000", "ALL"}), "OK");
  httplib::Client c("127.0.0.1", gw.port());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.Post("/w", "during-a-slow-redis", "text/plain");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(redis.command({"PING"}), "PONG");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_LT(took, 1s) << "the write waited for Redis longer than its command timeout";
  EXPECT_EQ(r->get_header_value("X-Sluice-Queued").rfind("local-", 0), 0u)
      << "kept locally: " << r->get_header_value("X-Sluice-Queued");
  const std::string key = r->get_header_value("Idempotency-Key");
  up.start();
  // On failure, how the stream's consumer groups stand (pending entries, last delivered id).
  const auto groups = [&] {
    std::string out;
    for (int p = 0; p < 8; ++p)
      out += "\n  partition " + std::to_string(p) + ": " +
             redis.command({"XINFO", "GROUPS", std::string(kStream) + ":" + std::to_string(p)});
    return out;
  };
  ASSERT_TRUE(up.wait_for(1, 10s)) << gw.log() << queue_stats(gw).dump() << "; the stream holds "
                                   << stream_length(redis) << " entries" << groups();
  std::this_thread::sleep_for(1500ms);  // the XADD Redis ran after its pause is replayed too
  int copies = 0;
  for (const auto& g : up.got()) {
    EXPECT_EQ(g.key, key);
    ++copies;
  }
  // The timed-out XADD was stored once Redis woke up: a duplicate with the same key, as
  // docs/RESILIENCE.md says (at least once); never more than the two copies.
  std::printf("  delivered %d time(s) with the same key\n", copies);
  EXPECT_GE(copies, 1);
  EXPECT_LE(copies, 2);
}

// A read of new entries (XREADGROUP ... >) that times out may still run in Redis: the entries it
// gives this consumer go to its pending list, and no later `>` read returns them. Before, such a
// write stayed there until the partition changed owner (seen once as a write never delivered
// after a slow Redis). Here Redis is paused for 800 ms (under the 1 s after which the client
// reconnects) right before a write, so the write's XADD and the next poll's XREADGROUP both
// wait and then run in that order, after the gateway gave up on both (300 ms). The lease is
// 20 s, so no change of owner reads the pending list instead.
TEST(RedisQueue, AnEntryReadByATimedOutReadIsDeliveredAfterAll) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;  // down until the write is in the stream
  SluiceProcess gw(config(up.port(), redis.port(),
                          ", on_redis_down: reject, command_timeout_ms: 300, lease_ms: 20000", ""));
  ASSERT_TRUE(eventually([&] { return queue_stats(gw)["backend_up"] == true; }, 5s));
  std::this_thread::sleep_for(300ms);  // the partitions taken and their (empty) pending lists read
  ASSERT_EQ(redis.command({"CLIENT", "PAUSE", "800", "ALL"}), "OK");
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Post("/w", "read-by-a-lost-read", "text/plain");
  ASSERT_TRUE(r);
  // Answered after the XADD timed out; Redis runs it after the pause all the same (the
  // documented duplicate of a timed-out write, here its only copy).
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(redis.command({"PING"}), "PONG");  // the pause is over
  ASSERT_TRUE(eventually([&] { return stream_length(redis) == 1; }, 2s)) << stream_length(redis);
  up.start();
  EXPECT_TRUE(up.wait_for(1, 8s)) << "the entry the lost read took is sent: " << gw.log()
                                  << queue_stats(gw).dump();
}

TEST(RedisQueue, ARejectedReplayIsADeadLetterInTheSecondStreamAndARequeueDeliversIt) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  WriteUpstream up;
  std::atomic<bool> account_exists{false};
  up.status_for = [&](const Received& r) {
    return r.body == "for-unknown-account" && !account_exists ? 422 : 200;
  };
  SluiceProcess gw(
      config(up.port(), redis.port(), ", on_redis_down: reject", "              concurrency: 1\n"));
  httplib::Client c("127.0.0.1", gw.port());
  for (const char* body : {"first", "for-unknown-account", "last"}) {
    auto r = c.Post("/w", body, "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
  }
  up.start();
  ASSERT_TRUE(up.wait_for(2, 10s));
  ASSERT_TRUE(eventually(
      [&] {
        return redis.command({"XLEN", std::string(kStream) + ":dead"}) == "1";
      },
      5s));
  EXPECT_TRUE(eventually([&] { return queue_stats(gw)["dead_letters"] == 1; }, 2s));
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto dead = admin.Get("/queues/later/dead", kAdmin);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->status, 200) << dead->body;
  const json letters = json::parse(dead->body)["dead_letters"];
  ASSERT_EQ(letters.size(), 1u) << letters.dump();
  EXPECT_EQ(letters[0]["status"], 422);
  EXPECT_EQ(letters[0]["reason"], "rejected");
  EXPECT_EQ(letters[0]["answer"], "{\"error\":\"no such account\"}");
  const std::string key = letters[0]["idempotency_key"];
  account_exists = true;
  auto requeue = admin.Post(
      "/queues/later/dead/" + std::to_string(letters[0]["id"].get<std::uint64_t>()) + "/requeue",
      kAdmin, "", "text/plain");
  ASSERT_TRUE(requeue);
  EXPECT_EQ(requeue->status, 200) << requeue->body;
  ASSERT_TRUE(up.wait_for(3, 10s));
  EXPECT_EQ(up.got().back().body, "for-unknown-account");
  EXPECT_EQ(up.got().back().key, key) << "the same key as the first delivery attempt";
  EXPECT_EQ(redis.command({"XLEN", std::string(kStream) + ":dead"}), "0");
  EXPECT_EQ(json::parse(admin.Get("/queues/later/dead", kAdmin)->body)["dead_letters"].size(), 0u);
  auto missing = admin.Delete("/queues/later/dead/999", kAdmin);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(RedisQueue, ConfigErrorsNameTheKeyWithItsPosition) {
  TempDir dir;
  const auto check = [&](const std::string& queue) {
    const std::string path = dir.write("bad.yaml", R"(upstreams:
  backend: { endpoints: ["127.0.0.1:1"] }
routes:
  - name: api
    match: { prefix: / }
    middlewares:
      - type: fallback
        fallbacks:
          - name: q
            kind: queue
            cluster: backend
            queue: )" + queue + R"(
    handler: { type: proxy, cluster: backend }
)");
    return run_sluice("check -c " + path).output;
  };
  std::string out = check(
      "{ backend: redis, redis: { adress: \"127.0.0.1:6379\" }, dir: " + dir.file("a") + " }");
  EXPECT_TRUE(std::regex_search(out, std::regex("bad\\.yaml:12:\\d+: .*adress"))) << out;
  out =
      check("{ backend: redis, redis: { on_redis_down: sometimes }, dir: " + dir.file("b") + " }");
  EXPECT_TRUE(std::regex_search(out, std::regex("bad\\.yaml:12:\\d+: .*on_redis_down"))) << out;
  out = check("{ backend: redis, redis: { on_redis_down: reject }, dir: " + dir.file("c") + " }");
  EXPECT_NE(out.find("no use with on_redis_down: reject"), std::string::npos) << out;
  out = check("{ backend: redis, redis: { on_redis_down: local } }");
  EXPECT_NE(out.find("is required with on_redis_down: local"), std::string::npos) << out;
  out = check("{ backend: redis, dir: " + dir.file("d") + " }");
  EXPECT_NE(out.find("redis: is required with backend: redis"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
