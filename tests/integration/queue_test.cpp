// Store and forward (the fallback's `queue` kind) through the real binary and real upstreams:
// writes during an outage answered 202 and delivered after it, in order per key, once per
// idempotency key, a 1 MiB body byte-identical; kill -9 with writes queued and in the middle of a
// drain; a full queue and a full disk answered 503; a 4xx on replay kept as a dead letter and
// delivered after a requeue through the admin API.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "support/otlp_collector.hpp"
#include "support/sluice_process.hpp"
#include "support/write_upstream.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string config(int upstream_port, const std::string& dir, const std::string& queue_extra,
                   const std::string& top = "") {
  return top + R"(
workers: 2
limits: { max_body_bytes: 4194304, buffer_body_bytes: 4194304 }
admin: { listen: 127.0.0.1:0, token: q-admin-token }
upstreams:
  backend:
    endpoints: ["127.0.0.1:)" +
         std::to_string(upstream_port) + R"("]
    connect_timeout_ms: 200
routes:
  - name: api
    match: { prefix: / }
    middlewares:
      - type: fallback
        fallbacks:
          - name: later
            kind: queue
            cluster: backend
            when: { upstream_error: true, status: [503] }
            queue: { dir: ")" +
         dir + R"(", backoff_base_ms: 50, backoff_max_ms: 200, max_body_bytes: 2097152)" +
         queue_extra + R"( }
    handler: { type: proxy, cluster: backend }
)";
}

const httplib::Headers kAdmin = {{"Authorization", "Bearer q-admin-token"}};

json queues(const SluiceProcess& gw) {
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/queues", kAdmin);
  if (!r || r->status != 200) return json::object();
  return json::parse(r->body);
}

// Waits until the queue is empty; its last stats.
json wait_drained(const SluiceProcess& gw, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  json q;
  while (std::chrono::steady_clock::now() < end) {
    q = queues(gw);
    if (q.contains("queues") && !q["queues"].empty() && q["queues"][0]["depth"] == 0 &&
        q["queues"][0]["in_flight"] == 0)
      return q["queues"][0];
    std::this_thread::sleep_for(20ms);
  }
  return q;
}

// The 202's JSON names the client's own Idempotency-Key, which may be any bytes a header value
// carries: escaped to valid JSON and UTF-8 (observe/json_escape.hpp), as every JSON sluice writes
// (a hand-written escaper here copied invalid UTF-8 into the body).
TEST(Queue, TheAcceptedAnswerIsValidJsonWhateverTheClientsKey) {
  WriteUpstream up;  // down
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"), ""));
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Post("/orders", {{"Idempotency-Key", "k\xff\xfe \"q\" \\ \t1"}}, "one", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  json body;
  ASSERT_NO_THROW(body = json::parse(r->body)) << r->body;
  EXPECT_EQ(body["idempotency_key"], "k\xef\xbf\xbd\xef\xbf\xbd \"q\" \\ \t1") << r->body;
  EXPECT_EQ(body["queued"], r->get_header_value("X-Sluice-Queued"));
}

TEST(Queue, WritesDuringAnOutageAreAcceptedAndDeliveredInOrderOncePerKey) {
  WriteUpstream up;  // down: nothing listens on its port yet
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"),
                          ", order_by: header, order_header: X-Account, fsync: always"));
  httplib::Client c("127.0.0.1", gw.port());
  std::vector<std::string> keys;
  std::map<std::string, std::vector<std::string>> sent;  // account -> bodies in order
  for (int i = 0; i < 30; ++i) {
    const std::string account = i % 3 == 0 ? "acct-b" : "acct-a";
    const std::string body = "write-" + std::to_string(i);
    httplib::Headers h = {{"X-Account", account}};
    if (i == 7) h.emplace("Idempotency-Key", "client-key-7");
    auto r = c.Post("/orders?n=" + std::to_string(i), h, body, "text/plain");
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->status, 202) << i << ": " << r->body;
    EXPECT_FALSE(r->get_header_value("X-Sluice-Queued").empty());
    EXPECT_EQ(r->get_header_value("X-Sluice-Fallback"), "later");
    const std::string key = r->get_header_value("Idempotency-Key");
    if (i == 7) {
      EXPECT_EQ(key, "client-key-7") << "the client's key is kept";
    }
    EXPECT_NE(json::parse(r->body)["queued"], nullptr);
    keys.push_back(key);
    sent[account].push_back(body);
  }
  // A 1 MiB body with every byte value.
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>((i * 7919) % 251);
  auto r = c.Post("/blobs", {{"X-Account", "acct-c"}}, big, "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  keys.push_back(r->get_header_value("Idempotency-Key"));
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size());

  // A read is never queued: the client sees the outage.
  auto read = c.Get("/orders");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 502);

  json before = queues(gw)["queues"][0];
  EXPECT_EQ(before["name"], "later");
  EXPECT_EQ(before["depth"], 31);
  EXPECT_GT(before["bytes"].get<double>(), 1 << 20);

  up.start();
  ASSERT_TRUE(up.wait_for(31, 15s)) << up.got().size() << " of 31 arrived";
  const json after = wait_drained(gw, 5s);
  EXPECT_EQ(after["depth"], 0);
  EXPECT_EQ(after["delivered"], 31);
  std::this_thread::sleep_for(300ms);  // nothing more may come
  const auto got = up.got();
  ASSERT_EQ(got.size(), 31u) << "each write exactly once";
  std::map<std::string, std::vector<std::string>> arrived;
  std::set<std::string> arrived_keys;
  for (const auto& g : got) {
    if (g.target == "/blobs") {
      EXPECT_TRUE(g.body == big) << "the 1 MiB body arrived changed (" << g.body.size() << ")";
    } else {
      arrived[g.account].push_back(g.body);
    }
    EXPECT_FALSE(g.replay.empty()) << "a replay says so";
    arrived_keys.insert(g.key);
  }
  EXPECT_EQ(arrived, sent) << "per account, in arrival order";
  EXPECT_EQ(arrived_keys, std::set<std::string>(keys.begin(), keys.end()));

  httplib::Client admin("127.0.0.1", gw.admin_port());
  const std::string m = admin.Get("/metrics", kAdmin)->body;
  EXPECT_NE(m.find(R"(sluice_queue_enqueued_total{queue="later"} 31)"), std::string::npos) << m;
  EXPECT_NE(m.find(R"(sluice_queue_replayed_total{queue="later",result="done"} 31)"),
            std::string::npos);
  EXPECT_NE(m.find(R"(sluice_queue_depth{queue="later"} 0)"), std::string::npos);
  EXPECT_NE(m.find(R"(sluice_queue_drain_duration_seconds_count{queue="later"} 1)"),
            std::string::npos);
  // The segments are gone once every record is done.
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("q")))
    if (e.is_regular_file()) ++files;
  EXPECT_LE(files, 1u);
  EXPECT_NE(gw.log().find("queue later: drained in"), std::string::npos);
}

TEST(Queue, KillNineWithWritesQueuedAndInTheMiddleOfADrainLosesNothing) {
  WriteUpstream up;
  up.delay_ms = 40;
  TempDir dir;
  const std::string cfg = config(up.port(), dir.file("q"), ", concurrency: 2, fsync: never");
  std::set<std::string> accepted;
  {
    SluiceProcess gw(cfg);
    httplib::Client c("127.0.0.1", gw.port());
    for (int i = 0; i < 60; ++i) {
      auto r = c.Post("/w", "w" + std::to_string(i), "text/plain");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 202);
      accepted.insert(r->get_header_value("Idempotency-Key"));
    }
    EXPECT_EQ(gw.stop(9), -1) << "killed, no clean exit";
  }
  {
    SluiceProcess gw(cfg);  // the upstream is still down: the writes wait
    EXPECT_NE(gw.log().find("60 writes pending from before the restart"), std::string::npos)
        << gw.log();
    up.start();
    ASSERT_TRUE(up.wait_for(10, 10s));
    gw.stop(9);  // in the middle of the drain
  }
  const std::size_t before_restart = up.got().size();
  EXPECT_LT(before_restart, 60u) << "the kill came too late to be mid-drain";
  SluiceProcess gw(cfg);
  ASSERT_TRUE(up.wait_for(60, 20s));
  wait_drained(gw, 10s);
  std::this_thread::sleep_for(200ms);
  std::set<std::string> delivered;
  for (const auto& g : up.got()) {
    EXPECT_TRUE(accepted.count(g.key)) << "a write nobody sent, or with a new key: " << g.key;
    delivered.insert(g.key);
  }
  EXPECT_EQ(delivered, accepted) << "every accepted write arrived";
  // At-least-once: writes in flight at the kill may come twice, with the same key.
  EXPECT_LE(up.got().size(), 60u + 2u);
}

TEST(Queue, AFullQueueAnswers503WithRetryAfterAndKeepsWhatItAccepted) {
  WriteUpstream up;
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"), ", max_bytes: 8192, retry_after_s: 7"));
  httplib::Client c("127.0.0.1", gw.port());
  int accepted = 0;
  int status = 0;
  std::string retry_after, body;
  for (int i = 0; i < 20; ++i) {
    auto r = c.Post("/w", std::string(1000, static_cast<char>('a' + i % 26)), "text/plain");
    ASSERT_TRUE(r);
    status = r->status;
    retry_after = r->get_header_value("Retry-After");
    body = r->body;
    if (status != 202) break;
    ++accepted;
  }
  EXPECT_GT(accepted, 3);
  EXPECT_LT(accepted, 8);
  EXPECT_EQ(status, 503);
  EXPECT_EQ(retry_after, "7");
  EXPECT_NE(body.find("queue_full"), std::string::npos) << body;
  up.start();
  EXPECT_TRUE(up.wait_for(static_cast<std::size_t>(accepted), 10s));
  wait_drained(gw, 5s);
  auto again = c.Post("/w", std::string(1000, 'z'), "text/plain");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << "the upstream is back: the write goes straight through";
}

TEST(Queue, ARejectedReplayIsADeadLetterAndARequeueDeliversIt) {
  WriteUpstream up;
  std::atomic<bool> account_exists{false};
  up.status_for = [&](const Received& r) {
    return r.body == "for-unknown-account" && !account_exists ? 422 : 200;
  };
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"), ", concurrency: 1"));
  httplib::Client c("127.0.0.1", gw.port());
  for (const char* body : {"first", "for-unknown-account", "last"}) {
    auto r = c.Post("/w", body, "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202);
  }
  up.start();
  ASSERT_TRUE(up.wait_for(2, 10s));
  const json stats = wait_drained(gw, 5s);
  EXPECT_EQ(stats["dead_letters"], 1);
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto unauthorized = admin.Get("/queues/later/dead");
  ASSERT_TRUE(unauthorized);
  EXPECT_EQ(unauthorized->status, 401);
  auto dead = admin.Get("/queues/later/dead", kAdmin);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->status, 200) << dead->body;
  const json letters = json::parse(dead->body)["dead_letters"];
  ASSERT_EQ(letters.size(), 1u) << letters.dump();
  EXPECT_EQ(letters[0]["status"], 422);
  EXPECT_EQ(letters[0]["reason"], "rejected");
  EXPECT_EQ(letters[0]["answer"], "{\"error\":\"no such account\"}");
  EXPECT_EQ(letters[0]["target"], "/w");
  const std::string key = letters[0]["idempotency_key"];

  account_exists = true;
  auto requeue =
      admin.Post("/queues/later/dead/" + std::to_string(letters[0]["id"].get<int>()) + "/requeue",
                 kAdmin, "", "text/plain");
  ASSERT_TRUE(requeue);
  EXPECT_EQ(requeue->status, 200) << requeue->body;
  ASSERT_TRUE(up.wait_for(3, 10s));
  EXPECT_EQ(up.got().back().body, "for-unknown-account");
  EXPECT_EQ(up.got().back().key, key) << "the same key as the first delivery attempt";
  EXPECT_EQ(json::parse(admin.Get("/queues/later/dead", kAdmin)->body)["dead_letters"].size(), 0u);
  auto missing = admin.Delete("/queues/later/dead/999", kAdmin);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  const std::string m = admin.Get("/metrics", kAdmin)->body;
  EXPECT_NE(m.find(R"(sluice_queue_replayed_total{queue="later",result="dead"} 1)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(sluice_queue_dead_letters{queue="later"} 0)"), std::string::npos);
}

TEST(Queue, PauseHoldsTheReplaysAndResumeLetsThemGo) {
  WriteUpstream up;
  up.start();
  TempDir dir;
  // status 503 from the upstream triggers the queue too (when: status: [503]).
  std::atomic<bool> overloaded{true};
  up.stop();
  up.status_for = [&](const Received&) { return overloaded ? 503 : 200; };
  up.start();
  SluiceProcess gw(config(up.port(), dir.file("q"), ""));
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Post("/w", "held", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  // The first try reached the upstream (its 503 made the queue take the write): it carried the
  // key that the client got and that every replay sends.
  const std::string key = r->get_header_value("Idempotency-Key");
  ASSERT_FALSE(up.all().empty());
  EXPECT_EQ(up.all()[0].key, key);
  EXPECT_TRUE(up.all()[0].replay.empty()) << "the first try is not a replay";
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto paused = admin.Post("/queues/later/pause", kAdmin, "", "text/plain");
  ASSERT_TRUE(paused);
  EXPECT_EQ(json::parse(paused->body)["state"], "paused");
  // Pausing starts no new replay; one already sent when the pause came finishes (and gets the
  // upstream's 503). Let it finish before the upstream recovers.
  for (int i = 0; i < 100; ++i) {
    const auto queues = json::parse(admin.Get("/queues", kAdmin)->body)["queues"];
    if (!queues.empty() && queues[0]["in_flight"] == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  overloaded = false;
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(up.got().size(), 0u) << "paused: nothing replayed";
  EXPECT_EQ(admin.Post("/queues/later/resume", kAdmin, "", "text/plain")->status, 200);
  ASSERT_TRUE(up.wait_for(1, 5s));
  EXPECT_EQ(up.got()[0].key, key);
  EXPECT_EQ(up.got()[0].body, "held");
  EXPECT_NE(up.got()[0].replay.find("; attempt="), std::string::npos) << up.got()[0].replay;
  EXPECT_EQ(admin.Post("/queues/nope/pause", kAdmin, "", "text/plain")->status, 404);
}

TEST(Queue, RetryAfterIsHonouredAndMaxAttemptsMakesADeadLetter) {
  WriteUpstream up;
  up.status_for = [](const Received&) { return 503; };
  up.retry_after = "1";
  up.start();
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"), ", max_attempts: 3"));
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Post("/w", "never-taken", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  httplib::Client admin("127.0.0.1", gw.admin_port());
  json letters;
  for (int i = 0; i < 100 && letters.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    letters = json::parse(admin.Get("/queues/later/dead", kAdmin)->body)["dead_letters"];
  }
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0]["reason"], "max_attempts");
  EXPECT_EQ(letters[0]["attempts"], 3);
  EXPECT_EQ(letters[0]["status"], 503);
  const auto calls = up.all();
  ASSERT_EQ(calls.size(), 4u) << "the first try and three replays";
  for (std::size_t i = 2; i < calls.size(); ++i)
    EXPECT_GE(calls[i].at - calls[i - 1].at, 950ms)
        << "replay " << i << " came before the upstream's Retry-After: 1";
  EXPECT_EQ(queues(gw)["queues"][0]["depth"], 0);
}

TEST(Queue, AttemptCountsSurviveARestart) {
  WriteUpstream up;
  up.status_for = [](const Received&) { return 503; };
  // The second replay's 503 puts the next replay 30 s away, so that the kill falls between two
  // replays however late this test gets the CPU; after the restart, a second apart.
  std::atomic<bool> restarted{false};
  up.retry_after_for = [&restarted](const Received& r) -> std::string {
    return !restarted && r.replay.find("; attempt=2") != std::string::npos ? "30" : "1";
  };
  up.start();
  TempDir dir;
  const std::string cfg = config(up.port(), dir.file("q"), ", max_attempts: 4, fsync: always");
  std::string key;
  {
    SluiceProcess gw(cfg);
    httplib::Client c("127.0.0.1", gw.port());
    auto r = c.Post("/w", "counted", "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    key = r->get_header_value("Idempotency-Key");
    // The first try (not a replay) and two replays: two counted attempts. Killed only once the
    // gateway has kept the second count (`retried` moves after the attempts frame is written),
    // not as soon as the upstream got the call: killed in between, the call was made but not
    // yet counted, and a third replay after the restart is right (a count lost at a crash
    // makes it lower, never higher: docs/RESILIENCE.md). Seen once on a loaded machine.
    json stats;
    for (int i = 0; i < 1000; ++i) {
      const json q = queues(gw);
      if (q.contains("queues") && !q["queues"].empty()) stats = q["queues"][0];
      if (stats.value("retried", 0) >= 2) break;
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(stats.value("retried", 0), 2) << stats.dump();
    ASSERT_EQ(up.all().size(), 3u);
    EXPECT_EQ(gw.stop(9), -1);
    restarted = true;
  }
  SluiceProcess gw(cfg);
  httplib::Client admin("127.0.0.1", gw.admin_port());
  json letters;
  for (int i = 0; i < 200 && letters.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    letters = json::parse(admin.Get("/queues/later/dead", kAdmin)->body)["dead_letters"];
  }
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0]["attempts"], 4);
  EXPECT_EQ(letters[0]["idempotency_key"], key);
  const auto calls = up.all();
  ASSERT_EQ(calls.size(), 5u) << "2 attempts before the restart and 2 after, not 4 after";
  EXPECT_NE(calls[3].replay.find("; attempt=3"), std::string::npos) << calls[3].replay;
  EXPECT_NE(calls[4].replay.find("; attempt=4"), std::string::npos) << calls[4].replay;
}

TEST(Queue, AnHttpDateRetryAfterIsHonoured) {
  WriteUpstream up;
  // The first try (the client's) and the first replay are refused with the date.
  up.status_for = [](const Received& r) {
    return r.replay.empty() || r.replay.find("attempt=1") != std::string::npos ? 503 : 200;
  };
  // Three seconds from now as an IMF-fixdate (RFC 9110 §5.6.7), and that time on the steady
  // clock, which the upstream records.
  const auto wall_now = std::chrono::system_clock::now();
  const auto steady_now = std::chrono::steady_clock::now();
  const std::time_t at = std::chrono::system_clock::to_time_t(wall_now) + 3;
  const auto due = steady_now + (std::chrono::system_clock::from_time_t(at) - wall_now);
  std::tm tm{};
  ::gmtime_r(&at, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  up.retry_after = date;
  up.start();
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"), ""));
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Post("/w", "after-the-date", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  ASSERT_TRUE(up.wait_for(1, 10s));
  const auto calls = up.all();
  ASSERT_EQ(calls.size(), 3u);
  ASSERT_LT(calls[1].at, due) << "the 503 came after its own date: this run cannot tell";
  // Not before the date (sluice waits date - now, in whole milliseconds). Before, this asked
  // for 1.9 s after the 503 that named the date, which holds only when the gateway started
  // and answered within a second of the date being set (not under ThreadSanitizer: 1.65 s).
  EXPECT_GE(calls[2].at, due - 5ms)
      << "the replay came before " << date << ", "
      << std::chrono::duration_cast<std::chrono::milliseconds>(due - calls[2].at).count()
      << " ms early";
}

TEST(Queue, EachReplayHasItsOwnAccessLogLineAndASpanLinkedToTheOriginalRequest) {
  OtlpCollector collector;
  WriteUpstream up;  // down: the first try fails
  // The first replay is refused (503), the second one taken: two replays, two lines, two spans.
  up.status_for = [](const Received& r) {
    return r.replay.find("attempt=1") != std::string::npos ? 503 : 200;
  };
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw(
      config(up.port(), dir.file("q"), "",
             "access_log: { path: " + log +
                 " }\ntracing: { endpoint: http://127.0.0.1:" + std::to_string(collector.port()) +
                 ", sampler: parentbased_always_on, batch: { schedule_delay_ms: 50 } }\n"));
  const std::string original_trace = "0af7651916cd43dd8448eb211c80319c";
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Post("/orders?x=1",
                  {{"traceparent", "00-" + original_trace + "-b7ad6b7169203331-01"},
                   {"X-Request-Id", "req-queued-1"}},
                  "traced", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  up.start();
  ASSERT_TRUE(up.wait_for(1, 10s));
  const auto calls = up.all();
  std::string seen;
  for (const auto& call : calls)
    seen += call.replay + " " + call.traceparent + "\n";
  ASSERT_EQ(calls.size(), 2u) << seen;
  std::set<std::string> replay_traces;
  for (const auto& call : calls) {
    ASSERT_EQ(call.traceparent.size(), 55u) << call.traceparent;
    const std::string trace = call.traceparent.substr(3, 32);
    EXPECT_NE(trace, original_trace) << "a replay is a trace of its own";
    EXPECT_EQ(call.traceparent.substr(53), "03") << "sampled, as the original; random trace id";
    replay_traces.insert(trace);
  }
  EXPECT_EQ(replay_traces.size(), 2u);

  // The access log: the queued request's line, then a line per replay with its trace id.
  std::vector<json> replays;
  json queued;
  for (int i = 0; i < 200 && replays.size() < 2; ++i) {
    std::this_thread::sleep_for(20ms);
    replays.clear();
    std::istringstream lines(read_file(log));
    for (std::string line; std::getline(lines, line);) {
      const json j = json::parse(line);
      // A replay while the upstream was still down has a line too (status 0, the error).
      const std::string detail = j.value("detail", "");
      if (detail.rfind("replay:", 0) != 0) {
        // not a replay
      } else if (j["status_code"] != 0) {
        replays.push_back(j);
      } else {
        EXPECT_NE(detail.find(",error:connect"), std::string::npos) << j;
      }
      if (detail.find("queued:") != std::string::npos) queued = j;
    }
  }
  ASSERT_EQ(replays.size(), 2u) << read_file(log);
  EXPECT_EQ(queued["status_code"], 202);
  EXPECT_EQ(queued["trace_id"], original_trace);
  for (std::size_t i = 0; i < 2; ++i) {
    const json& j = replays[i];
    EXPECT_EQ(j["detail"], "replay:1;attempt=" + std::to_string(i + 1)) << j.dump();
    EXPECT_EQ(j["status_code"], i == 0 ? 503 : 200) << j.dump();
    EXPECT_EQ(j["answered_by"], "queue:later");
    EXPECT_EQ(j["method"], "POST");
    EXPECT_EQ(j["path"], "/orders");
    EXPECT_EQ(j["request_id"], "req-queued-1");
    EXPECT_EQ(j["upstream"], "127.0.0.1:" + std::to_string(up.port()));
    EXPECT_EQ(j["trace_id"], calls[i].traceparent.substr(3, 32)) << j.dump();
  }

  // The spans: the original request's SERVER span, and per replay a CLIENT span of the replay's
  // trace whose link names the original request's span.
  json server;
  std::vector<json> clients;
  for (int i = 0; i < 250 && clients.size() < 2; ++i) {
    std::this_thread::sleep_for(20ms);
    clients.clear();
    for (const auto& span : collector.spans()) {
      if (span["traceId"] == original_trace && span["kind"] == 2) server = span;
      if (replay_traces.count(span["traceId"].get<std::string>())) clients.push_back(span);
    }
  }
  ASSERT_FALSE(server.is_null());
  ASSERT_EQ(clients.size(), 2u);
  for (const auto& span : clients) {
    EXPECT_EQ(span["kind"], 3) << span.dump();
    ASSERT_TRUE(span.contains("links")) << span.dump();
    EXPECT_EQ(span["links"][0]["traceId"], original_trace);
    EXPECT_EQ(span["links"][0]["spanId"], server["spanId"]) << "linked to the request it replays";
  }
}

TEST(Queue, AWriteOlderThanMaxAgeBecomesADeadLetterNotALostOne) {
  WriteUpstream up;  // down for good
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"), ", max_age_ms: 300"));
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Post("/w", "too-late", "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202);
  httplib::Client admin("127.0.0.1", gw.admin_port());
  json letters;
  for (int i = 0; i < 60 && letters.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    letters = json::parse(admin.Get("/queues/later/dead", kAdmin)->body)["dead_letters"];
  }
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0]["reason"], "expired");
  EXPECT_EQ(letters[0]["idempotency_key"], r->get_header_value("Idempotency-Key"));
  auto dropped =
      admin.Delete("/queues/later/dead/" + std::to_string(letters[0]["id"].get<int>()), kAdmin);
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->status, 200);
  EXPECT_EQ(queues(gw)["queues"][0]["dead_letters"], 0);
}

TEST(Queue, AReloadKeepsTheQueueAndRefusesToMoveItsDirectory) {
  WriteUpstream up;
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"), ""));
  httplib::Client c("127.0.0.1", gw.port());
  std::set<std::string> accepted;
  for (int i = 0; i < 5; ++i) {
    auto r = c.Post("/w", "before-reload-" + std::to_string(i), "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202);
    accepted.insert(r->get_header_value("Idempotency-Key"));
  }
  httplib::Client admin("127.0.0.1", gw.admin_port());
  gw.rewrite_config(config(up.port(), dir.file("q"), ", concurrency: 1"));
  auto ok = admin.Post("/reload", kAdmin, "", "text/plain");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(queues(gw)["queues"][0]["depth"], 5) << "the same queue, its writes kept";

  gw.rewrite_config(config(up.port(), dir.file("elsewhere"), ""));
  auto refused = admin.Post("/reload", kAdmin, "", "text/plain");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("a queue's directory changes with a restart"), std::string::npos)
      << refused->body;

  up.start();
  ASSERT_TRUE(up.wait_for(5, 10s));
  const std::set<std::string> delivered = up.keys();
  EXPECT_EQ(delivered, accepted);
}

// The admin API runs on its own thread, a SIGHUP or file-change reload on the main thread
// (workers: 2). GET /queues used to find the queues through the process's shared slots — and to
// add the registry there on its first call — while a reload could be adding slots (the first
// fallback, proxy, breaker of the process): a data race on their vector, a read of freed memory
// when it grew (ThreadSanitizer, `make test-tsan`). Here every reload adds slots while a client
// polls /queues: every answer must be a list, and the queue appear once configured.
TEST(Queue, TheAdminListsQueuesWhileReloadsAddThem) {
  WriteUpstream up;
  TempDir dir;
  const std::string plain = R"(
workers: 2
admin: { listen: 127.0.0.1:0, token: q-admin-token }
routes:
  - name: api
    match: { prefix: / }
    handler: { type: respond, status: 200, body: plain }
)";
  SluiceProcess gw(plain);
  EXPECT_EQ(queues(gw), json({{"queues", json::array()}})) << "no queue configured yet";

  std::atomic<bool> stop{false};
  std::atomic<int> answers{0};
  std::mutex mu;
  std::vector<std::string> wrong;  // what the poller got instead of a list
  std::thread poller([&] {
    httplib::Client admin("127.0.0.1", gw.admin_port());
    while (!stop) {
      auto r = admin.Get("/queues", kAdmin);
      const json body = r ? json::parse(r->body, nullptr, false) : json();
      const bool ok = r && r->status == 200 && body.is_object() && body.contains("queues") &&
                      body["queues"].is_array();
      if (ok) {
        ++answers;
        continue;
      }
      std::lock_guard lock(mu);
      wrong.push_back(r ? std::to_string(r->status) + " " + r->body : "no answer");
      if (!r) break;  // the gateway is gone
    }
  });
  // Each step is a new kind of slot for the process: the queue, then a circuit breaker.
  const std::string with_queue = config(up.port(), dir.file("q"), "");
  const std::string with_breaker = [&with_queue] {
    std::string c = with_queue;
    c.insert(c.find("    handler: { type: proxy"),
             "      - { type: circuit_breaker, name: cb, strategy: error_count, threshold: 2, "
             "min_request_amount: 1 }\n");
    return c;
  }();
  const auto applied = [&gw] {  // reloads so far ("reload (SIGHUP): config ... applied")
    const std::string log = gw.log();
    int n = 0;
    for (auto at = log.find(" applied, "); at != std::string::npos;
         at = log.find(" applied, ", at + 1))
      ++n;
    return n;
  };
  for (const auto* next : {&with_queue, &with_breaker}) {
    const int applied_before = applied();
    gw.rewrite_config(*next);
    ::kill(gw.pid(), SIGHUP);
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end && applied() == applied_before)
      std::this_thread::sleep_for(10ms);
    EXPECT_GT(applied(), applied_before) << gw.log();
    const int answers_before = answers.load();
    while (std::chrono::steady_clock::now() < end && answers.load() < answers_before + 5)
      std::this_thread::sleep_for(10ms);  // the poller keeps asking after the reload
  }
  stop = true;
  poller.join();
  EXPECT_TRUE(wrong.empty()) << wrong.size() << " wrong answers, first: " << wrong.front();
  EXPECT_GT(answers.load(), 10);
  const json listed = queues(gw);
  ASSERT_EQ(listed.value("queues", json::array()).size(), 1u) << listed.dump() << gw.log();
  EXPECT_EQ(listed["queues"][0]["name"], "later");
  EXPECT_TRUE(gw.running()) << gw.log();
}

TEST(Queue, MaxRateSpacesTheReplaysOfADrain) {
  WriteUpstream up;
  TempDir dir;
  SluiceProcess gw(config(up.port(), dir.file("q"), ", max_rate: 20"));
  httplib::Client c("127.0.0.1", gw.port());
  for (int i = 0; i < 30; ++i) {
    auto r = c.Post("/w", "paced-" + std::to_string(i), "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202);
  }
  up.start();
  // Failed once in a clean-clone CI's ASan stage on a machine at load ~10 (59 s for the test,
  // passes alone): the queue's state and the gateway's log say where the replays stood.
  ASSERT_TRUE(up.wait_for(30, 10s))
      << up.got().size() << " of 30 delivered; " << queues(gw).dump() << "\n"
      << gw.log();
  const auto got = up.got();
  // 30 replays at 20 per second, one at a time: 29 gaps of 50 ms at least.
  EXPECT_GE(got.back().at - got.front().at, 1300ms);
  EXPECT_LE(got.back().at - got.front().at, 4000ms);
}

TEST(Queue, ConfigErrorsNameTheKey) {
  TempDir dir;
  const auto check = [&](const std::string& fallback) {
    const std::string path = dir.write("bad.yaml", R"(
upstreams:
  backend: { endpoints: ["127.0.0.1:1"] }
routes:
  - name: api
    match: { prefix: / }
    middlewares:
      - type: fallback
        fallbacks:
          - )" + fallback + R"(
    handler: { type: proxy, cluster: backend }
)");
    return run_sluice("check -c " + path).output;
  };
  EXPECT_NE(check("{ name: q, kind: queue, cluster: backend, queue: { dir: " + dir.file("a") +
                  ", methods: [POST, GET] } }")
                .find("GET is never queued"),
            std::string::npos);
  EXPECT_NE(check("{ name: q, kind: queue, cluster: backend }").find("queue"), std::string::npos);
  EXPECT_NE(check("{ name: q, kind: queue, cluster: nope, queue: { dir: " + dir.file("b") + " } }")
                .find("unknown cluster \"nope\""),
            std::string::npos);
  EXPECT_NE(check("{ name: q, kind: queue, cluster: backend, queue: { dir: " + dir.file("c") +
                  ", fsync: sometimes } }")
                .find("fsync"),
            std::string::npos);
}

TEST(Queue, AFullDiskAnswersTheDeclared503AndLosesNothingAccepted) {
  TempDir dir;
  const std::string mnt = dir.file("tmpfs");
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  WriteUpstream up;
  std::set<std::string> accepted;
  int refused = 0;
  {
    SluiceProcess gw(config(up.port(), mnt + "/q", ", fsync: always"));
    httplib::Client c("127.0.0.1", gw.port());
    for (int i = 0; i < 40; ++i) {
      auto r = c.Post("/w", std::string(64 * 1024, static_cast<char>('a' + i % 26)), "text/plain");
      ASSERT_TRUE(r) << "sluice must answer, " << i;
      if (r->status == 202) {
        accepted.insert(r->get_header_value("Idempotency-Key"));
      } else {
        EXPECT_EQ(r->status, 503) << r->body;
        EXPECT_FALSE(r->get_header_value("Retry-After").empty());
        ++refused;
      }
    }
    EXPECT_GT(refused, 0) << "a 1 MiB disk cannot hold 40 x 64 KiB";
    EXPECT_GT(accepted.size(), 5u);
    EXPECT_TRUE(gw.running()) << "no crash on ENOSPC";
    EXPECT_EQ(gw.stop(9), -1);
  }
  up.start();
  SluiceProcess gw(config(up.port(), mnt + "/q", ", fsync: always"));
  ASSERT_TRUE(up.wait_for(accepted.size(), 15s)) << gw.log();
  wait_drained(gw, 5s);
  const std::set<std::string> delivered = up.keys();
  EXPECT_EQ(delivered, accepted);
}

}  // namespace
}  // namespace sluice::testing
