// Fault drills (issue 16) through the real binary: a dependency fails while steady load runs,
// and each drill asserts that nothing hangs (every request answered within a bound) and nothing
// is lost (every request gets an answer, and only the answers the config declares), that the
// failure is visible in a warning or a metric, and that the gateway serves on afterwards.
// Redis killed, paused and restarted under a Redis-backed rate_limit (per_request and leased);
// an upstream cut mid-stream, black-holed and answering garbage; the OTLP collector gone;
// a SIGHUP storm; limits.max_connections reached; slowloris connections; the access log's
// disk full. Figures and run times: docs/RELIABILITY.md, "Fault drills".
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/cpu_waits.hpp"
#include "support/eventually.hpp"
#include "support/otlp_collector.hpp"
#include "support/raw_client.hpp"
#include "support/raw_upstream.hpp"
#include "support/redis_test_server.hpp"
#include "support/required_tool.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// No request of a drill may take longer than this. It is far below the client's read timeout
// (kHang), so a request that waits on the failed dependency fails the bound instead of the
// test hanging; and far above a healthy answer, also under ASan on a loaded 2-core machine.
constexpr auto kBound = 1s;
constexpr auto kHang = 5s;

std::string scrape(const SluiceProcess& gw) {
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

// The sum of the samples of `name` whose labels contain every one of `labels` (`k="v"`), or -1
// when there is none. Label order does not matter.
double metric(const std::string& metrics, const std::string& name,
              const std::vector<std::string>& labels = {}) {
  std::istringstream in(metrics);
  double sum = -1;
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(name) || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != '{' && next != ' ') continue;
    const auto value_at = line.rfind(' ');
    const std::string series = line.substr(0, value_at);
    if (!std::all_of(labels.begin(), labels.end(),
                     [&](const std::string& l) { return series.find(l) != std::string::npos; }))
      continue;
    sum = std::max(sum, 0.0) + std::stod(line.substr(value_at + 1));
  }
  return sum;
}

double metric(const SluiceProcess& gw, const std::string& name,
              const std::vector<std::string>& labels = {}) {
  return metric(scrape(gw), name, labels);
}

bool healthy(const SluiceProcess& gw) {
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/healthz");
  return gw.running() && r && r->status == 200;
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// Steady load: `threads` clients sending `GET path` in a loop, each at most about 2,000 a
// second, until stop(). Every answer is
// recorded as "<status>" (2xx) or "<status> <error field of the JSON body>", so a test can
// check that only declared answers came; a request without an answer within kHang is lost.
struct LoadOptions {
  int threads = 3;
  bool keep_alive = true;
  bool record_body = false;  // record 2xx answers as "<status> <body>"
  // The gateway's pid: a request's time then counts without the longest wait for a CPU of any
  // one of the gateway's threads during it, and without the client thread's own (both read from
  // schedstat before and after each request; cpu_waits.hpp). What remains is the time the
  // gateway kept the request waiting while it could run: work queued ahead of it, a blocked
  // worker. The wall time is still printed.
  pid_t cpu_waits_of = 0;
};

class Load {
 public:
  Load(int port, std::string path, LoadOptions options = {}) : options_(options) {
    for (int t = 0; t < options.threads; ++t) {
      clients_.emplace_back([this, port, path] {
        httplib::Client c("127.0.0.1", port);
        c.set_keep_alive(options_.keep_alive);
        c.set_connection_timeout(kHang);
        c.set_read_timeout(kHang);
        const pid_t pid = options_.cpu_waits_of;
        while (!stop_) {
          std::map<std::string, long long> gateway_before;
          std::chrono::nanoseconds mine_before{};
          if (pid != 0) {
            gateway_before = run_queue_waits(pid);
            mine_before = this_thread_run_queue_wait();
          }
          const auto t0 = Clock::now();
          auto r = c.Get(path);
          const auto took = Clock::now() - t0;
          Clock::duration waited{};
          if (pid != 0) {
            waited = most_waited(gateway_before, run_queue_waits(pid)) +
                     (this_thread_run_queue_wait() - mine_before);
          }
          record(r ? std::optional<httplib::Response>(*r) : std::nullopt, took, waited,
                 r ? std::string() : httplib::to_string(r.error()));
          // Steady, not flat out: a saturating load on a shared 2-core machine would starve the
          // drill's own thread and make its deadlines measure the scheduler.
          std::this_thread::sleep_for(500us);
        }
      });
    }
  }
  ~Load() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : clients_)
      if (t.joinable()) t.join();
  }
  int answered() const { return answered_; }
  // Waits until `n` more requests than now were answered (the load is really flowing).
  bool advance(int n, std::chrono::milliseconds timeout = 5s) const {
    const int target = answered_ + n;
    return eventually([&] { return answered_ >= target; }, timeout);
  }
  int lost() const { return lost_; }
  // The slowest request so far (less its waits for a CPU with cpu_waits_of).
  std::chrono::milliseconds slowest() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(slowest_ns_.load()));
  }
  // The slowest request so far, and the count starts again (a drill's phases apart).
  std::chrono::milliseconds restart_slowest() {
    slowest_wall_ns_ = 0;
    most_waited_ns_ = 0;
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(slowest_ns_.exchange(0)));
  }
  std::map<std::string, int> answers() const {
    std::lock_guard lock(mu_);
    return answers_;
  }
  std::string summary() const {
    std::lock_guard lock(mu_);
    const auto ms = [](std::int64_t ns) { return std::to_string(ns / 1'000'000); };
    std::string s = "answered " + std::to_string(answered_) + ", lost " + std::to_string(lost_) +
                    ", slowest " + std::to_string(slowest().count()) + " ms";
    if (options_.cpu_waits_of != 0)
      s += " besides waits for a CPU (wall time up to " + ms(slowest_wall_ns_) +
           " ms, a request's CPU waits up to " + ms(most_waited_ns_) + " ms)";
    s += ";";
    for (const auto& [answer, n] : answers_)
      s += " [" + answer + "] x" + std::to_string(n);
    if (!first_loss_.empty()) s += "; first loss: " + first_loss_;
    return s;
  }
  // Every answer is one of `allowed`, none was lost and none took longer than kBound.
  void expect_only(const std::set<std::string>& allowed) const {
    // The figures of the run, for docs/RELIABILITY.md.
    std::printf("[ load     ] %s\n", summary().c_str());
    EXPECT_EQ(lost(), 0) << summary();
    EXPECT_LT(slowest(), kBound) << summary();
    for (const auto& [answer, n] : answers())
      EXPECT_TRUE(allowed.contains(answer)) << answer << " x" << n << ": " << summary();
  }

 private:
  static void raise(std::atomic<std::int64_t>& most, std::int64_t ns) {
    for (auto seen = most.load(); ns > seen && !most.compare_exchange_weak(seen, ns);) {
    }
  }
  void record(const std::optional<httplib::Response>& r, Clock::duration took,
              Clock::duration waited, const std::string& error) {
    const auto ns = [](Clock::duration d) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    };
    raise(slowest_ns_, ns(took - std::min(waited, took)));
    raise(slowest_wall_ns_, ns(took));
    raise(most_waited_ns_, ns(waited));
    std::lock_guard lock(mu_);
    if (!r) {
      ++lost_;
      if (first_loss_.empty()) first_loss_ = error;
      return;
    }
    std::string answer = std::to_string(r->status);
    if (r->status < 300 && options_.record_body) answer += " " + r->body;
    if (r->status >= 300) {
      const auto body = json::parse(r->body, nullptr, false);
      answer += " " + (body.is_object() && body.contains("error") ? body["error"].dump()
                                                                  : "body " + r->body);
    }
    ++answers_[answer];
    ++answered_;
  }

  const LoadOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::atomic<int> lost_{0};
  std::atomic<std::int64_t> slowest_ns_{0};
  std::atomic<std::int64_t> slowest_wall_ns_{0};
  std::atomic<std::int64_t> most_waited_ns_{0};
  mutable std::mutex mu_;
  std::map<std::string, int> answers_;
  std::string first_loss_;
  std::vector<std::thread> clients_;
};

// ---- 1. Redis killed, paused and restarted under a Redis-backed rate_limit -----------------

struct RedisDrill {
  const char* mode;
  const char* on_failure;
  std::set<std::string> answers;  // the declared answers: 200, plus the policy's own
  std::string degraded;           // the policy's answer, which must have been given
};

void PrintTo(const RedisDrill& d, std::ostream* os) {
  *os << "mode " << d.mode << ", on_failure " << d.on_failure;
}

class FaultDrillsRedis : public ::testing::TestWithParam<RedisDrill> {};

std::string redis_limit_config(int port, const RedisDrill& d) {
  // Rate and burst far above what the load reaches, so every non-degraded decision allows and
  // any other answer is the failure policy's. lease_max keeps leases small, so leased mode goes
  // to Redis many times a second, as under a real limit.
  return R"(
workers: 2
routes:
  - name: limited
    middlewares:
      - type: rate_limit
        name: rl
        backend: redis
        redis: { address: "127.0.0.1:)" +
         std::to_string(port) + R"(", key_prefix: drill, mode: )" + d.mode +
         ", on_failure: " + d.on_failure + R"(,
                 command_timeout_ms: 100, connect_timeout_ms: 100, failure_threshold: 3,
                 probe_backoff_min_ms: 50, probe_backoff_max_ms: 200,
                 reconnect_backoff_min_ms: 20, reconnect_backoff_max_ms: 200, lease_max: 20 }
        limits: [ { name: q, key: route, rate: 1000000, burst: 1000000 } ]
    handler: { type: respond, body: ok }
)";
}

// How many EVALSHA commands `redis` has run since it started (INFO commandstats).
long evalsha_calls(const RedisTestServer& redis) {
  const std::string info = redis.command({"INFO", "commandstats"});
  const std::string key = "cmdstat_evalsha:calls=";
  const auto at = info.find(key);
  return at == std::string::npos ? 0 : std::stol(info.substr(at + key.size()));
}

TEST_P(FaultDrillsRedis, KilledPausedAndRestartedUnderLoad) {
  SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
  const RedisDrill& drill = GetParam();
  RedisTestServer redis;
  ASSERT_TRUE(redis.start());
  SluiceProcess gw(redis_limit_config(redis.port(), drill));
  auto up = [&] { return metric(gw, "sluice_rate_limit_backend_up", {"limiter=\"rl\""}); };
  auto errors = [&](const char* kind) {
    return metric(gw, "sluice_rate_limit_backend_errors_total",
                  {"limiter=\"rl\"", std::string("kind=\"") + kind + "\""});
  };
  auto redis_decisions = [&] {
    return metric(gw, "sluice_rate_limit_decisions_total",
                  {"limiter=\"rl/q\"", "result=\"allowed\""});
  };

  // A request's time counts without the gateway's and the client's waits for a CPU: failed
  // once at 3,171 ms (wall) against the 1 s bound in a clean-clone CI beside other jobs, where
  // every other run's slowest is about 100 ms (the command timeout).
  Load load(gw.port(), "/", {.cpu_waits_of = gw.pid()});
  ASSERT_TRUE(load.advance(200)) << load.summary();
  // The Redis connection is made in the background: on a loaded machine the first requests may
  // be decided locally (on_failure) before it is up, so wait for the bucket rather than assume.
  EXPECT_TRUE(eventually(
      [&] {
        load.advance(10);
        return redis.command({"DBSIZE"}) != "0";
      },
      5s))
      << "the bucket lives in Redis";
  ASSERT_TRUE(eventually([&] { return up() == 1; }, 5s));

  // Paused: Redis holds the connection but answers nothing for 2 s.
  std::thread sleeper([&] { redis.command({"DEBUG", "SLEEP", "2"}); });
  EXPECT_TRUE(eventually([&] { return up() == 0; }, 1500ms)) << "marked down while paused";
  EXPECT_TRUE(load.advance(100, 1500ms)) << "served while Redis sleeps: " << load.summary();
  sleeper.join();
  EXPECT_GT(errors("timeout"), 0);
  EXPECT_TRUE(eventually([&] { return up() == 1; }, 3s)) << "back after the pause";

  // Killed: connections refused until it is restarted on the same port.
  redis.kill();
  EXPECT_TRUE(eventually([&] { return up() == 0; }, 2s)) << "marked down when killed";
  EXPECT_TRUE(load.advance(100, 2s)) << "served while Redis is dead: " << load.summary();
  EXPECT_GT(errors("connection"), 0);
  ASSERT_TRUE(redis.start());  // empty: RedisTestServer runs without persistence
  EXPECT_TRUE(eventually([&] { return up() == 1; }, 3s)) << "back after the restart";
  const double before = redis_decisions();
  ASSERT_TRUE(load.advance(200)) << load.summary();
  load.stop();

  // Decisions use Redis again: the restarted server runs the bucket's script, and allowed
  // decisions (not the policy's allowed_degraded) grow. (Not DBSIZE once the load has stopped:
  // at this rate the bucket refills within a millisecond and its key expires then; DBSIZE
  // counted it only until Redis reclaimed it, which on a loaded machine happened first once.)
  EXPECT_GT(evalsha_calls(redis), 0) << "the restarted Redis decided";
  EXPECT_GT(redis_decisions(), before);
  EXPECT_GT(metric(gw, "sluice_rate_limit_decisions_total", {"limiter=\"rl/q\"", "_degraded\""}), 0)
      << "the policy decided while Redis was away";
  load.expect_only(drill.answers);
  EXPECT_TRUE(load.answers().contains(drill.degraded)) << load.summary();
  const std::string log = gw.log();
  EXPECT_GE(count_of(log, "redis rate limiter: backend down"), 2) << log;
  EXPECT_GE(count_of(log, "redis rate limiter: backend up again"), 2) << log;
  EXPECT_TRUE(healthy(gw));
}

INSTANTIATE_TEST_SUITE_P(
    FaultDrills, FaultDrillsRedis,
    ::testing::Values(
        RedisDrill{.mode = "per_request",
                   .on_failure = "fail_closed",
                   .answers = {"200", "503 \"rate_limiter_unavailable\""},
                   .degraded = "503 \"rate_limiter_unavailable\""},
        RedisDrill{.mode = "leased", .on_failure = "local", .answers = {"200"}, .degraded = "200"}),
    [](const auto& info) { return std::string(info.param.mode); });

// ---- 2. Upstream cut mid-stream, black-holed, answering garbage ----------------------------

// Reads from `fd` until `done(bytes)` holds, the peer closes, or `timeout` passes; returns
// what arrived and sets `eof` when the peer closed.
std::string read_until(int fd, const std::function<bool(const std::string&)>& done,
                       std::chrono::milliseconds timeout, bool* eof = nullptr) {
  std::string got;
  const auto deadline = Clock::now() + timeout;
  if (eof != nullptr) *eof = false;
  while (!done(got)) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[16384];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (eof != nullptr) *eof = true;
      break;
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

TEST(FaultDrills, UpstreamCutMidStreamBlackHoledAndAnsweringGarbage) {
  // A healthy upstream on keep-alive connections, under steady load through the whole drill.
  RawUpstream healthy_up([](int fd) {
    while (!read_head(fd).empty())
      write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  // Streams a chunked answer, then dies when the test says so (the client has the first chunk).
  std::atomic<bool> cut{false};
  const std::string first_chunk(4096, 'x');
  RawUpstream streamer([&](int fd) {
    if (read_head(fd).empty()) return;
    std::ostringstream chunk;
    chunk << std::hex << first_chunk.size() << "\r\n" << first_chunk << "\r\n";
    write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk.str());
    eventually([&] { return cut.load(); }, kHang);
    ::shutdown(fd, SHUT_RDWR);
  });
  // Reads requests and never answers.
  RawUpstream black_hole([](int fd) {
    read_head(fd);
    char c;
    while (::read(fd, &c, 1) > 0) {
    }
  });
  // Answers every request with bytes that are not HTTP, and keeps the connection open: a
  // gateway that pooled it would send the next request down the same broken connection.
  RawUpstream garbage([](int fd) {
    while (!read_head(fd).empty())
      write_all(fd, "NOT HTTP AT ALL\r\n\r\n");
  });
  // A valid 400 followed by stray bytes (one write, so they arrive with it): the answer is
  // passed on, the connection with bytes left over must not be reused.
  RawUpstream trailing([](int fd) {
    while (!read_head(fd).empty())
      write_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbadSTRAY BYTES\r\n\r\n");
  });
  auto cluster = [](const char* name, int port, const std::string& extra = "") {
    return std::string("  ") + name + ": { endpoints: [\"127.0.0.1:" + std::to_string(port) +
           "\"], retries: { max: 0 }" + extra + " }\n";
  };
  SluiceProcess gw(
      "workers: 2\nupstreams:\n" + cluster("healthy", healthy_up.port()) +
      cluster("streamer", streamer.port(), ", buffer_response_bytes: 1024") +
      cluster("black_hole", black_hole.port()) + cluster("garbage", garbage.port()) +
      cluster("trailing", trailing.port()) +
      "routes:\n"
      "  - { name: stream, match: { prefix: /stream }, handler: { type: proxy, cluster: streamer "
      "} }\n"
      "  - { name: hole, match: { prefix: /hole }, handler: { type: proxy, cluster: black_hole, "
      "timeout_ms: 300 } }\n"
      "  - { name: garbage, match: { prefix: /garbage }, handler: { type: proxy, cluster: "
      "garbage } }\n"
      "  - { name: trailing, match: { prefix: /trailing }, handler: { type: proxy, cluster: "
      "trailing } }\n"
      "  - { name: healthy, handler: { type: proxy, cluster: healthy } }\n");
  Load load(gw.port(), "/healthy");
  ASSERT_TRUE(load.advance(100)) << load.summary();

  // Cut mid-stream: the client has the head and the first chunk, then the upstream dies. The
  // client must see its connection end without the last chunk (so it knows the answer is
  // incomplete), at once rather than at some timeout.
  for (int i = 0; i < 3; ++i) {
    cut = false;
    const int fd = connect_loopback(gw.port(), 5);
    ASSERT_GE(fd, 0);
    write_all(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    // sluice passes the body on in chunks of its own (at most buffer_response_bytes each).
    auto has_first_chunk = [&](const std::string& s) {
      return std::count(s.begin(), s.end(), 'x') >= static_cast<long>(first_chunk.size());
    };
    const std::string start = read_until(fd, has_first_chunk, kHang);
    cut = true;
    ASSERT_EQ(start.rfind("HTTP/1.1 200", 0), 0u) << start;
    ASSERT_TRUE(has_first_chunk(start)) << "streamed, not held back: " << start;
    const auto t0 = Clock::now();
    bool eof = false;
    const std::string rest = read_until(
        fd, [](const std::string&) { return false; }, kHang, &eof);
    EXPECT_TRUE(eof) << "the client's connection is ended";
    EXPECT_LT(Clock::now() - t0, kBound);
    EXPECT_EQ((start + rest).find("\r\n0\r\n"), std::string::npos)
        << "no last chunk: the cut answer does not pass as complete";
    ::close(fd);
  }

  // Black-holed: several requests at once each get the route timeout's 504, on time.
  std::vector<std::thread> holes;
  std::atomic<int> timed_out{0};
  for (int i = 0; i < 6; ++i) {
    holes.emplace_back([&] {
      httplib::Client c("127.0.0.1", gw.port());
      c.set_read_timeout(kHang);
      const auto t0 = Clock::now();
      auto r = c.Get("/hole");
      const auto took = Clock::now() - t0;
      EXPECT_TRUE(r) << httplib::to_string(r.error());
      if (!r) return;
      EXPECT_EQ(r->status, 504);
      EXPECT_EQ(json::parse(r->body)["error"], "upstream_timeout");
      EXPECT_GE(took, 250ms);
      EXPECT_LT(took, 300ms + kBound);
      if (r->status == 504) ++timed_out;
    });
  }
  for (auto& t : holes)
    t.join();
  EXPECT_EQ(timed_out.load(), 6);

  // Garbage: 502 every time, and every request on a new upstream connection.
  httplib::Client c("127.0.0.1", gw.port());
  c.set_read_timeout(kHang);
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/garbage");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 502);
    EXPECT_EQ(json::parse(r->body)["error"], "bad_gateway");
    auto t = c.Get("/trailing");
    ASSERT_TRUE(t) << httplib::to_string(t.error());
    EXPECT_EQ(t->status, 400);
    EXPECT_EQ(t->body, "bad");
  }
  EXPECT_EQ(garbage.accepted(), 5) << "a connection that answered garbage is not pooled";
  EXPECT_EQ(trailing.accepted(), 5) << "a connection with bytes left over is not pooled";

  ASSERT_TRUE(load.advance(100)) << load.summary();
  load.stop();
  load.expect_only({"200"});
  EXPECT_GE(metric(gw, "sluice_upstream_errors_total", {"cluster=\"black_hole\""}), 6);
  EXPECT_GE(metric(gw, "sluice_upstream_errors_total", {"cluster=\"garbage\""}), 5);
  EXPECT_TRUE(healthy(gw));
}

// ---- 3. The OTLP collector gone ------------------------------------------------------------

TEST(FaultDrills, OtlpCollectorGoneLeavesRequestsAlone) {
  auto collector = std::make_unique<OtlpCollector>();
  SluiceProcess gw("workers: 2\ntracing:\n  endpoint: " + collector->url() + R"(
  sampler: always_on
  batch: { schedule_delay_ms: 20, max_queue_size: 256, max_export_batch_size: 64,
           export_timeout_ms: 200, max_retries: 1, initial_backoff_ms: 20, max_backoff_ms: 50 }
routes: [ { name: r, handler: { type: respond, body: ok } } ]
)");
  Load load(gw.port(), "/");
  ASSERT_TRUE(eventually([&] { return !collector->spans().empty(); })) << "exporting works";
  collector.reset();  // gone: its port is closed from now on
  const double failures = std::max(0.0, metric(gw, "sluice_otlp_export_failures_total"));
  const double dropped = std::max(0.0, metric(gw, "sluice_otlp_spans_dropped_total"));
  EXPECT_TRUE(eventually([&] {
    return metric(gw, "sluice_otlp_export_failures_total") > failures &&
           metric(gw, "sluice_otlp_spans_dropped_total") > dropped;
  })) << scrape(gw);
  ASSERT_TRUE(load.advance(500)) << load.summary();
  load.stop();
  load.expect_only({"200"});
  EXPECT_NE(gw.log().find("OTLP export to"), std::string::npos) << gw.log();
  EXPECT_TRUE(healthy(gw));
}

// ---- 4. SIGHUP storm -----------------------------------------------------------------------

std::string body_config(int n) {
  return "workers: 2\nroutes:\n  - name: api\n    middlewares: [ { type: request_id } ]\n"
         "    handler: { type: respond, body: \"v" +
         std::to_string(n) + "\" }\n";
}

TEST(FaultDrills, FiftySighupReloadsInASecondUnderLoad) {
  SluiceProcess gw(body_config(0));
  Load load(gw.port(), "/", {.record_body = true});
  ASSERT_TRUE(load.advance(100)) << load.summary();
  // The new config is written before the storm, and its file-watch reload awaited: writing a
  // file per signal made the storm measure the disk (renames stalled for seconds while others
  // built on the machine). Each SIGHUP then reloads the same file: a full reload, new chains.
  gw.rewrite_config(body_config(1));
  httplib::Client c("127.0.0.1", gw.port());
  ASSERT_TRUE(eventually([&] {
    auto r = c.Get("/");
    return r && r->body == "v1";
  }));
  const auto reloads = [&] {
    return std::max(0.0, metric(gw, "sluice_config_reloads_total", {"result=\"ok\""}));
  };
  const double before = reloads();
  const auto t0 = Clock::now();
  for (int i = 0; i < 50; ++i) {
    if (i > 0) std::this_thread::sleep_until(t0 + i * 19ms);
    ASSERT_EQ(::kill(gw.pid(), SIGHUP), 0);
  }
  // A check of this test's own loop, not of sluice: the 50th signal is due at 931 ms. It was
  // timed after one more 19 ms sleep against 1.1 s, and a loaded machine woke this thread late
  // (1.16 s); signals sent within 1.5 s are still a storm (a reload takes 2-100 ms).
  EXPECT_LT(Clock::now() - t0, 1500ms) << "a storm: 50 within about a second";
  // Signals that arrive while a reload runs are merged into one (POSIX keeps one pending
  // SIGHUP), so how many reloads 50 signals make depends on how long a reload takes: 50 on a
  // quiet machine, 10 at a load average of 22 (a reload then took over 100 ms). At least one in
  // ten is asked for: fewer would mean signals lost, not merged.
  EXPECT_TRUE(eventually([&] { return reloads() - before >= 5; })) << scrape(gw);
  ASSERT_TRUE(load.advance(100)) << load.summary();
  load.stop();

  load.expect_only({"200 v0", "200 v1"});
  const std::string log = gw.log();
  EXPECT_GE(count_of(log, "reload (SIGHUP): config"), 5) << log;
  EXPECT_EQ(count_of(log, "refused"), 0) << log;
  EXPECT_LE(metric(gw, "sluice_config_reloads_total", {"result=\"error\""}), 0);
  std::printf(
      "[ reloads  ] %.0f by SIGHUP, counted %lld ms after the first\n", reloads() - before,
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()));
  EXPECT_TRUE(healthy(gw));
}

// ---- 5. limits.max_connections reached -----------------------------------------------------

TEST(FaultDrills, MaxConnectionsRefusesTheExcessAtOnceAndServesTheRest) {
  SluiceProcess gw(R"(
workers: 1
limits: { max_connections: 8 }
routes: [ { name: r, handler: { type: respond, body: ok } } ]
)");
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<RawClient>(gw.port()));
    ASSERT_TRUE(held.back()->send(request));
    ASSERT_EQ(status_codes(held.back()->read_responses(1)), std::vector<int>{200}) << i;
  }
  for (int i = 0; i < 4; ++i) {
    RawClient excess(gw.port());  // the kernel completes the handshake; sluice closes it
    const auto t0 = Clock::now();
    EXPECT_TRUE(excess.closed_by_peer(kBound)) << "closed at once, not queued: " << i;
    EXPECT_LT(Clock::now() - t0, kBound);
  }
  for (auto& h : held) {  // the connections it has keep being served
    ASSERT_TRUE(h->send(request));
    EXPECT_EQ(status_codes(h->read_responses(2)), (std::vector<int>{200, 200}));
  }
  EXPECT_EQ(metric(gw, "http_connections_refused_total", {"listener=\"public\""}), 4);
  held.pop_back();  // one slot free again: a new client gets in
  EXPECT_TRUE(eventually([&] {
    RawClient next(gw.port());
    next.send(request);
    return status_codes(next.read_responses(1, 500ms)) == std::vector<int>{200};
  }));
  EXPECT_TRUE(healthy(gw));
}

// ---- 6. Slowloris ---------------------------------------------------------------------------

// How many slowloris connections to hold: `fallback`, or SLUICE_SLOWLORIS_CONNECTIONS when it is
// set (a number of at least `at_least`; anything else fails the test rather than being ignored).
rlim_t connections_wanted(rlim_t fallback, rlim_t at_least) {
  const char* env = std::getenv("SLUICE_SLOWLORIS_CONNECTIONS");
  if (env == nullptr || *env == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(env, &end, 10);
  EXPECT_TRUE(*end == '\0' && n >= at_least)
      << "SLUICE_SLOWLORIS_CONNECTIONS=" << env << ": expected a number >= " << at_least;
  return *end == '\0' && n >= at_least ? static_cast<rlim_t>(n) : fallback;
}

// How long the gateway may keep the slowloris drill's normal client waiting while the 408s go
// out, besides the time its threads (or the client's) waited for a CPU. Release build, 10,000
// connections, 2 workers, on the shared 2-core machine: 1-4 ms with the sweep's 32-a-turn limit,
// idle or beside stress-ng --cpu 2, and 15 ms once (beside the fuzz job, the gateway's threads
// having waited up to 7.6 s for a CPU during the drill: 15 ms was the bound then); 19-62 ms
// without the limit (every expired read cancelled in one turn, the 408s queued ahead of the
// client), so a regression of 19-25 ms passes. The wall time was bounded at 1 s instead, which
// a starved gateway exceeded (1,183 ms once) while the regression stayed under it (118-289 ms)
// in the release build. Sanitizer builds run the sweep and the request ~10x slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr auto kQueuedBound = 250ms;
#else
constexpr auto kQueuedBound = 25ms;
#endif

TEST(FaultDrills, SlowlorisConnectionsGet408WhileANormalClientIsServed) {
  // Issue 16's 10,000. Before the sweep cancelled expired reads 32 at a time (server.cpp),
  // 10,000 timing out together kept a normal request waiting up to 1.25 s under ASan behind
  // the burst of 408s (docs/RELIABILITY.md). This process and the gateway (which inherits the
  // limit) each hold one descriptor per stalled connection, plus their own: raise the soft
  // limit, and where the hard limit is lower, hold as many as it allows (the count is printed).
  // SLUICE_SLOWLORIS_CONNECTIONS lowers the count for a build whose slowdown the machine cannot
  // absorb at 10,000: `make test-tsan` sets 2,000 (under ThreadSanitizer on 2 cores, 10,000 missed
  // the time bounds below; docs/RELIABILITY.md). The bounds themselves are the same in every build
  // but kQueuedBound's.
  constexpr rlim_t kSpare = 512, kAtLeast = 1000;
  const rlim_t kWanted = connections_wanted(10000, kAtLeast);
  constexpr auto kHeaderTimeout = 1000ms;
  rlimit fds{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &fds), 0);
  struct RestoreLimit {
    rlimit saved;
    ~RestoreLimit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
  } restore{fds};
  if (fds.rlim_cur < kWanted + kSpare) {
    fds.rlim_cur = std::min(fds.rlim_max, kWanted + kSpare);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &fds), 0) << std::strerror(errno);
  }
  if (fds.rlim_cur < kAtLeast + kSpare) GTEST_SKIP() << "RLIMIT_NOFILE is " << fds.rlim_cur;
  const int kStalled = static_cast<int>(std::min(kWanted, fds.rlim_cur - kSpare));
  std::printf("[ slowloris] %d stalled connections (RLIMIT_NOFILE %llu of hard %llu)\n", kStalled,
              static_cast<unsigned long long>(fds.rlim_cur),
              static_cast<unsigned long long>(fds.rlim_max));
  SluiceProcess gw(
      "workers: 2\nlimits: { header_timeout_ms: " + std::to_string(kHeaderTimeout.count()) +
      ", max_connections: " + std::to_string(kStalled + 100) + " }\n" +
      "routes: [ { name: r, handler: { type: respond, body: ok } } ]\n");
  // A new connection per request: the accept path must not starve behind the stalled ones.
  Load load(gw.port(), "/", {.threads = 1, .keep_alive = false, .cpu_waits_of = gw.pid()});
  ASSERT_TRUE(load.advance(20)) << load.summary();

  // When the gateway answered is the kernel's receive time of the answer's first bytes
  // (SO_TIMESTAMPNS, wall clock), not when this loop got to read them: reading 10,000 sockets is
  // slow when the machine is busy, and that delay is this process's, not the gateway's. The
  // partial header went out between two clock reads (this process may lose the CPU in
  // between): the bound on the latest 408 counts from the later, "not early" from the earlier.
  struct Stalled {
    int fd;
    Clock::time_point sent;
    std::chrono::system_clock::time_point writing, sent_wall;  // before and after the write
    std::string got;
    bool eof = false;
    Clock::duration answered_after{};        // the kernel's receive time of the 408 - sent_wall
    Clock::duration answered_after_write{};  // the same - writing (>= answered_after)
    Clock::duration read_after{};            // when this loop read it - sent (reported)
  };
  std::vector<Stalled> stalled;
  stalled.reserve(kStalled);
  const auto waits_before = run_queue_waits(gw.pid());
  // All connections are opened idle first (the idle timeout is 60 s), and the partial header is
  // written on all of them in one loop once the gateway holds them: their header deadlines
  // fall within that loop (~0.1 s when the machine is quiet), so they expire in one or two
  // sweeps, the burst of 408s that a sweep without its 32-a-turn limit would queue ahead of the
  // normal client all at once (bench/soak/slowloris_burst.py; written right after each
  // connect, the expiries were spread over the opening, and the drill passed with that
  // regression in the release build).
  const auto opening = Clock::now();
  for (int i = 0; i < kStalled; ++i) {
    const int fd = connect_loopback(gw.port(), 5);
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    const int on = 1;
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on), 0)
        << std::strerror(errno);
    stalled.push_back({fd, {}, {}, {}, {}});
  }
  const auto opened = Clock::now();
  ASSERT_TRUE(eventually(
      [&] { return metric(gw, "http_connections", {"listener=\"public\""}) >= kStalled; }, 30s))
      << "the gateway holds " << metric(gw, "http_connections", {"listener=\"public\""})
      << " connections of " << kStalled;
  const auto held = Clock::now();
  for (auto& st : stalled) {
    st.writing = std::chrono::system_clock::now();
    write_all(st.fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");  // and then nothing
    st.sent = Clock::now();
    st.sent_wall = std::chrono::system_clock::now();
  }
  const auto all_open = Clock::now();
  const int answered_then = load.answered();
  // Opening 10,000 connections in a tight loop can fill the listen queue (somaxconn, 4096 here)
  // while a starved gateway accepts them; the kernel then drops a SYN, the normal client's
  // included, and its connect is retried after 1 s (seen once: 1,070 ms under a load average
  // of 19). That is the kernel's flood behaviour, not the sweep's: the bound of 1 s applies from
  // here on, while the stalled connections wait and time out; the opening is only reported.
  const std::string opening_load = load.summary();
  const auto opening_slowest = load.restart_slowest();
  const auto ms = [](Clock::duration d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  std::printf(
      "[ slowloris] opening: %lld ms, all held %lld ms later, headers written in %lld ms; "
      "slowest normal request %lld ms (%s)\n",
      ms(opened - opening), ms(held - opened), ms(all_open - held),
      static_cast<long long>(opening_slowest.count()), opening_load.c_str());
  EXPECT_EQ(load.lost(), 0) << load.summary();

  // Every stalled connection gets its 408 and is closed; collect them all in one poll loop.
  const auto deadline = all_open + kHeaderTimeout + 3s;
  std::size_t open = stalled.size();
  std::vector<pollfd> fds_to_poll;
  while (open > 0 && Clock::now() < deadline) {
    fds_to_poll.clear();
    for (const auto& s : stalled)
      fds_to_poll.push_back({s.eof ? -1 : s.fd, POLLIN, 0});
    if (::poll(fds_to_poll.data(), fds_to_poll.size(), 100) < 0) break;
    for (std::size_t i = 0; i < stalled.size(); ++i) {
      if (fds_to_poll[i].revents == 0) continue;
      char buf[4096];
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const auto n = ::recvmsg(stalled[i].fd, &msg, 0);
      if (n > 0) {
        if (stalled[i].got.empty()) {
          auto& s = stalled[i];
          s.read_after = Clock::now() - s.sent;
          s.answered_after = s.read_after;  // unless the kernel says when (it does on Linux)
          s.answered_after_write = s.read_after + (s.sent_wall - s.writing);
          for (auto* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
            timespec ts{};
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            const std::chrono::system_clock::time_point at{
                std::chrono::duration_cast<std::chrono::system_clock::duration>(
                    std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec))};
            s.answered_after = at - s.sent_wall;
            s.answered_after_write = at - s.writing;
          }
        }
        stalled[i].got.append(buf, static_cast<std::size_t>(n));
      } else {
        stalled[i].eof = true;
        --open;
      }
    }
  }
  // A starved gateway is late by as long as it waited for a CPU: that much is added to the
  // bound below. A slow sweep is not a wait for a CPU (the sweep timer sleeps), so it still
  // fails the bound.
  const auto starved = most_waited(waits_before, run_queue_waits(gw.pid()));
  EXPECT_GE(load.answered() - answered_then, 5) << "served meanwhile: " << load.summary();
  load.stop();
  EXPECT_LT(load.slowest(), kQueuedBound)
      << "a normal request waited behind the 408s (besides its waits for a CPU): "
      << load.summary();

  int got_408 = 0, closed = 0, late = 0;
  std::size_t latest_at = 0;
  Clock::duration earliest = Clock::duration::max(), latest{}, latest_read{};
  for (std::size_t i = 0; i < stalled.size(); ++i) {
    auto& s = stalled[i];
    if (s.got.rfind("HTTP/1.1 408", 0) == 0) ++got_408;
    if (s.eof) ++closed;
    if (!s.got.empty()) {
      earliest = std::min(earliest, s.answered_after_write);
      if (s.answered_after > latest) latest_at = i;
      latest = std::max(latest, s.answered_after);
      latest_read = std::max(latest_read, s.read_after);
      if (s.answered_after >= kHeaderTimeout + 2s + starved) ++late;
    }
    ::close(s.fd);
  }
  std::printf(
      "[ slowloris] 408s sent after %lld to %lld ms (read here by %lld ms); the gateway's "
      "threads waited up to %lld ms for a CPU\n",
      ms(earliest), ms(latest), ms(latest_read), ms(starved));
  EXPECT_EQ(got_408, kStalled);
  EXPECT_EQ(closed, kStalled);
  EXPECT_GE(earliest, kHeaderTimeout - 50ms) << "not before the header timeout";
  // Which connections were late tells whether the gateway was slow to take them in (the last
  // opened: the header timer starts when the gateway has accepted a connection and read its
  // first bytes, which a starved gateway does late) or to sweep them.
  EXPECT_LT(latest, kHeaderTimeout + 2s + starved)
      << "and soon after it: " << late << " later; the latest was connection " << latest_at
      << ", its header written " << ms(stalled[latest_at].sent - stalled.front().sent)
      << " ms after the first";
  load.expect_only({"200"});
  EXPECT_TRUE(healthy(gw));
}

// ---- 7. The access log's disk full ----------------------------------------------------------

// A tmpfs of `size` mounted at `path` for the test's lifetime (needs CAP_SYS_ADMIN).
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& path, const std::string& size) : path_(path) {
    ::mkdir(path.c_str(), 0755);
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0)
      mounted_ = true;
    else
      error_ = std::strerror(errno);
  }
  ~SmallTmpfs() {
    // Lazily: the gateway that wrote to it is stopped first, but a lingering descriptor must
    // not leave the mount behind.
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

TEST(FaultDrills, AccessLogDiskFullKeepsAnsweringAndCountsWriteErrors) {
  TempDir dir;
  SmallTmpfs disk(dir.file("logs"), "64k");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a 64 KiB tmpfs: " << disk.error();
  const std::string log = dir.file("logs/access.log");
  SluiceProcess gw("workers: 2\naccess_log: { path: " + log + " }\n" +
                   "routes: [ { name: r, handler: { type: respond, body: ok } } ]\n");
  Load load(gw.port(), "/");
  EXPECT_TRUE(eventually([&] {
    return metric(gw, "sluice_access_log_write_errors_total") > 0 &&
           metric(gw, "sluice_access_log_lines_dropped_total") > 0;
  })) << scrape(gw);
  ASSERT_TRUE(load.advance(300)) << "served with the disk full: " << load.summary();

  // Space freed (logrotate's copytruncate): lines are written again.
  ASSERT_EQ(::truncate(log.c_str(), 0), 0) << std::strerror(errno);
  const double written = metric(gw, "sluice_access_log_lines_written_total");
  EXPECT_TRUE(eventually([&] {
    return metric(gw, "sluice_access_log_lines_written_total") > written;
  })) << scrape(gw);
  load.stop();
  load.expect_only({"200"});
  EXPECT_NE(gw.log().find("access log: write failed: No space left on device"), std::string::npos)
      << gw.log();
  EXPECT_TRUE(healthy(gw));
  gw.stop();  // before the tmpfs goes away
}

}  // namespace
}  // namespace sluice::testing
