// The background threads' file tables, on the real binary (core/own_file_table.hpp): with one
// worker (on the main thread) and the access log, tracing and health checks on, no other thread
// shares the worker's file table, none holds a socket of the worker's, and the log, its reopen on
// SIGUSR1, stdout logging and the export still work; an exporter started by a reload holds no
// copy of the worker's upstream connections, whose peers see the FIN when the worker closes them.
// The admin listener (on by default) runs in a table of its own too, and still answers; what its
// POST /reload builds (a queue's files, which the worker writes) is made in the worker's table; a
// taken admin port still fails the start with the same error.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/eventually.hpp"
#include "support/otlp_collector.hpp"
#include "support/raw_upstream.hpp"
#include "support/sluice_process.hpp"
#include "support/taken_port.hpp"
#include "support/thread_files.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

#define SKIP_UNDER_TSAN()                                                                 \
  do {                                                                                    \
    if (!kOwnFileTables) GTEST_SKIP() << "ThreadSanitizer build: the tables stay shared"; \
  } while (0)

// An upstream that answers every request of a connection with 200 "ok" until its peer closes
// the connection, and counts the connections whose close (FIN) it saw.
class KeepAliveUpstream {
 public:
  int port() const { return raw_.port(); }
  int closed_by_peer() const { return closed_; }

 private:
  std::atomic<int> closed_{0};
  RawUpstream raw_{[this](int fd) {
    while (!read_head(fd).empty())
      write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    ++closed_;
  }};
};

// The threads of `pid` other than the main one that use its file table, as "tid name".
std::vector<std::string> sharing_threads(pid_t pid) {
  std::vector<std::string> out;
  for (pid_t tid : threads_named(pid)) {
    if (tid == pid || !shares_file_table(pid, tid)) continue;
    std::string comm;
    std::getline(
        std::ifstream("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm"),
        comm);
    out.push_back(std::to_string(tid) + " " + comm);
  }
  return out;
}

// What the thread has open above 2.
std::vector<std::string> own_files(pid_t pid, pid_t tid) {
  std::vector<std::string> out;
  for (const auto& [fd, target] : descriptor_targets(pid, tid))
    if (fd > 2) out.push_back(target);
  return out;
}

TEST(FileTables, OneWorkerUsesItsTableAloneBesideTheAccessLogTracingAndHealthChecks) {
  SKIP_UNDER_TSAN();
  KeepAliveUpstream upstream;
  OtlpCollector collector;
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw(
      "workers: 1\n"
      "admin: { enabled: false }\n"
      "access_log: { path: " +
      log +
      " }\n"
      "tracing:\n"
      "  endpoint: http://127.0.0.1:" +
      std::to_string(collector.port()) +
      "\n"
      "  sampler: always_on\n"
      "  batch: { schedule_delay_ms: 50 }\n"
      "upstreams:\n"
      "  backend:\n"
      "    endpoints: [\"127.0.0.1:" +
      std::to_string(upstream.port()) +
      "\"]\n"
      "    health_check: { path: /healthz, interval_ms: 100 }\n"
      "routes: [{ name: r, handler: { type: proxy, cluster: backend } }]\n");
  const pid_t pid = gw.pid();
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Get("/before");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  pid_t writer = 0, exporter = 0, checker = 0;
  ASSERT_TRUE(eventually(
      [&] {
        auto one = [&](const char* name) {
          const auto t = threads_named(pid, name);
          return t.size() == 1 ? t[0] : 0;
        };
        writer = one("sluice-alog");
        exporter = one("sluice-otlp");
        checker = one("sluice-health");
        return writer != 0 && exporter != 0 && checker != 0;
      },
      10s))
      << "the writer, exporter and health check threads run";
  ASSERT_TRUE(eventually([&] { return collector.spans().size() >= 1; }, 10s))
      << "the exporter exports from its own table";
  ASSERT_TRUE(eventually([&] { return read_lines(log).size() == 1; }));

  EXPECT_EQ(sharing_threads(pid), std::vector<std::string>{})
      << "a thread uses the worker's file table: each socket call of the worker takes a file "
         "reference";
  const auto worker_sockets = sockets_of(pid, pid);
  ASSERT_FALSE(worker_sockets.empty()) << "the listener at least";
  for (pid_t tid : {writer, exporter, checker})
    for (const auto& s : sockets_of(pid, tid))
      EXPECT_EQ(worker_sockets.count(s), 0u) << s << " of the worker is open on thread " << tid;
  EXPECT_EQ(own_files(pid, writer), std::vector<std::string>{log});

  // logrotate: the writer reopens in its own table and closes the renamed file there.
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(::kill(pid, SIGUSR1), 0);
  ASSERT_TRUE(eventually([&] {
    c.Get("/after");
    return !read_lines(log).empty();
  }));
  EXPECT_NE(read_lines(log)[0].find("\"/after\""), std::string::npos) << read_lines(log)[0];
  const auto rotated = read_lines(log + ".1");  // /before, and any /after before the reopen
  ASSERT_GE(rotated.size(), 1u);
  EXPECT_NE(rotated[0].find("\"/before\""), std::string::npos) << rotated[0];
  EXPECT_TRUE(eventually([&] { return own_files(pid, writer) == std::vector<std::string>{log}; }))
      << "the renamed file stays open on the writer's thread";
}

TEST(FileTables, TheAccessLogGoesToStdoutFromTheWritersTable) {
  SKIP_UNDER_TSAN();
  SluiceProcess gw(
      "workers: 1\n"
      "admin: { enabled: false }\n"
      "access_log: { path: stdout }\n"
      "routes: [{ name: r, handler: { type: respond, status: 200, body: ok } }]\n");
  httplib::Client c("127.0.0.1", gw.port());
  ASSERT_TRUE(c.Get("/to-stdout"));
  EXPECT_TRUE(eventually([&] { return gw.log().find("\"/to-stdout\"") != std::string::npos; }))
      << gw.log();
  EXPECT_EQ(sharing_threads(gw.pid()), std::vector<std::string>{});
}

// A reload that starts an exporter while the worker has an upstream connection open: a copy of
// the worker's table in the exporter's thread would keep that connection open after the worker
// closes it (no FIN for the upstream, for as long as the exporter runs).
TEST(FileTables, AConnectionTheWorkerClosesAfterAReloadStartedAThreadGetsItsFin) {
  SKIP_UNDER_TSAN();
  KeepAliveUpstream upstream;
  auto config = [&](int tracing_port) {
    return "workers: 1\n"
           "admin: { enabled: false }\n"
           "tracing: { endpoint: \"http://127.0.0.1:" +
           std::to_string(tracing_port) +
           "\", batch: { max_retries: 0 } }\n"
           "upstreams:\n"
           "  backend:\n"
           "    endpoints: [\"127.0.0.1:" +
           std::to_string(upstream.port()) +
           "\"]\n"
           "    pool: { idle_timeout_ms: 200 }\n"
           "routes: [{ name: r, handler: { type: proxy, cluster: backend } }]\n";
  };
  SluiceProcess gw(config(1));
  httplib::Client c("127.0.0.1", gw.port());
  ASSERT_TRUE(c.Get("/first"));  // the upstream connection now waits in the pool
  ASSERT_EQ(upstream.closed_by_peer(), 0);

  gw.rewrite_config(config(2));  // another exporter: started by the reload's thread
  ::kill(gw.pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] { return threads_named(gw.pid(), "sluice-otlp").size() == 2; }))
      << gw.log();
  std::this_thread::sleep_for(300ms);  // past the pool's idle timeout
  auto r = c.Get("/second");           // takes from the pool: the idle connection is closed
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(eventually([&] { return upstream.closed_by_peer() >= 1; }, 3s))
      << "the worker closed its idle upstream connection and the upstream saw no FIN: it is "
         "still open in another thread's table";
  EXPECT_TRUE(eventually([&] { return sharing_threads(gw.pid()).empty(); }))
      << "the reload's thread is joined, the new exporter has its own table";
}

// The default config's shape: the admin listener on, beside one worker. Its thread makes its
// listener, its io_context and its connections in its own table; reads are served there, the
// endpoints that may touch the workers' world (/queues) on the main thread.
TEST(FileTables, TheAdminListenerHasATableOfItsOwnAndAnswers) {
  SKIP_UNDER_TSAN();
  KeepAliveUpstream upstream;
  TempDir dir;
  const std::string log = dir.file("access.log");
  SluiceProcess gw(
      "workers: 1\n"
      "access_log: { path: " +
      log +
      " }\n"
      "upstreams:\n"
      "  backend:\n"
      "    endpoints: [\"127.0.0.1:" +
      std::to_string(upstream.port()) +
      "\"]\n"
      "routes: [{ name: r, middlewares: [{ type: request_id, name: rid }],\n"
      "           handler: { type: proxy, cluster: backend } }]\n");
  const pid_t pid = gw.pid();
  ASSERT_NE(gw.admin_port(), 0);
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Get("/before");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  const auto admin_threads = threads_named(pid, "sluice-admin-0");
  ASSERT_EQ(admin_threads.size(), 1u);
  const pid_t admin = admin_threads[0];
  httplib::Client a("127.0.0.1", gw.admin_port());
  a.set_keep_alive(true);  // an admin connection open while the tables are compared
  for (const char* path : {"/healthz", "/readyz", "/config", "/routes", "/queues", "/breakers"}) {
    auto got = a.Get(path);
    ASSERT_TRUE(got) << path;
    EXPECT_EQ(got->status, 200) << path << ": " << got->body;
  }
  auto metrics = a.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("listener=\"admin\""), std::string::npos)
      << "the admin listener's connection counts, read across the tables";
  auto edit = a.Post("/routes/r/middlewares/rid/disable", "", "text/plain");
  ASSERT_TRUE(edit);
  EXPECT_EQ(edit->status, 200) << edit->body;

  EXPECT_EQ(sharing_threads(pid), std::vector<std::string>{})
      << "a thread uses the worker's file table: each socket call of the worker takes a file "
         "reference";
  const auto admin_sockets = sockets_of(pid, admin);
  const auto worker_sockets = sockets_of(pid, pid);
  EXPECT_GE(admin_sockets.size(), 2u) << "the admin listener and the open admin connection";
  for (const auto& s : admin_sockets)
    EXPECT_EQ(worker_sockets.count(s), 0u) << s << " is in both tables";

  // SIGUSR1 (on the main thread) still reopens the log, with the admin thread's signals blocked.
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(::kill(pid, SIGUSR1), 0);
  ASSERT_TRUE(eventually([&] {
    c.Get("/after");
    return !read_lines(log).empty();
  })) << gw.log();
  EXPECT_EQ(gw.stop(SIGTERM), 0) << "the admin thread stops and the process drains";
  EXPECT_NE(gw.log().find("drained"), std::string::npos) << gw.log();
}

// What POST /reload builds must be made in the worker's table: here a store-and-forward queue,
// whose segment files the worker appends to by descriptor (and a cluster with health checks). Built
// on the admin thread (a table of its own), the worker's write would go to no file (EBADF: the
// request answered 503) or to another one.
TEST(FileTables, WhatAnAdminReloadBuildsIsInTheWorkersTable) {
  SKIP_UNDER_TSAN();
  TempDir dir;
  KeepAliveUpstream first, second;
  auto config = [&](bool queue) {
    std::string c =
        "workers: 1\n"
        "listen: 127.0.0.1:0\n"
        "admin: { listen: 127.0.0.1:0 }\n"
        "upstreams:\n"
        "  backend: { endpoints: [\"127.0.0.1:" +
        std::to_string(first.port()) +
        "\"] }\n"
        "  down: { endpoints: [\"127.0.0.1:1\"], connect_timeout_ms: 200 }\n" +
        (queue ? "  added: { endpoints: [\"127.0.0.1:" + std::to_string(second.port()) +
                     "\"], health_check: { path: /healthz, interval_ms: 100 } }\n"
               : std::string()) +
        "routes:\n"
        "  - name: up\n"
        "    match: { prefix: /up }\n"
        "    handler: { type: proxy, cluster: backend }\n";
    if (queue) {
      c += "  - name: second\n"
           "    match: { prefix: /second }\n"
           "    handler: { type: proxy, cluster: added }\n"
           "  - name: later\n"
           "    match: { prefix: /later }\n"
           "    middlewares:\n"
           "      - type: fallback\n"
           "        fallbacks:\n"
           "          - name: q\n"
           "            kind: queue\n"
           "            cluster: down\n"
           "            when: { upstream_error: true }\n"
           "            queue: { dir: \"" +
           dir.path() +
           "/queue\" }\n"
           "    handler: { type: proxy, cluster: down }\n";
    }
    return c;
  };
  SluiceProcess gw(config(false));
  httplib::Client c("127.0.0.1", gw.port());
  ASSERT_TRUE(c.Get("/up"));
  // Only the POST may reload: the config path becomes a link to a file in a directory the
  // config watch does not watch (replacing it reloads once, the same config), then that file
  // changes.
  TempDir elsewhere;
  const std::string real = elsewhere.write("real.yaml", config(false));
  const std::string link = gw.config_path() + ".link";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  ASSERT_EQ(std::rename(link.c_str(), gw.config_path().c_str()), 0);
  const std::string file_reload = "reload (file change): config";
  ASSERT_TRUE(eventually([&] { return gw.log().find(file_reload) != std::string::npos; }))
      << gw.log();
  elsewhere.write("real.yaml", config(true));
  httplib::Client a("127.0.0.1", gw.admin_port());
  a.set_read_timeout(10, 0);
  auto reloaded = a.Post("/reload", "", "text/plain");
  ASSERT_TRUE(reloaded);
  ASSERT_EQ(reloaded->status, 200) << reloaded->body << gw.log();
  EXPECT_NE(reloaded->body.find("\"ok\""), std::string::npos) << reloaded->body;

  auto queued = c.Post("/later", "a write to keep", "text/plain");
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->status, 202) << queued->body << gw.log();
  auto q = a.Get("/queues");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->status, 200);
  const auto stats = nlohmann::json::parse(q->body)["queues"];
  ASSERT_EQ(stats.size(), 1u) << q->body;
  EXPECT_EQ(stats[0]["depth"], 1) << q->body;
  EXPECT_GT(stats[0]["bytes"].get<long>(), 0) << q->body;
  bool in_a_segment = false;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/queue"))
    if (e.is_regular_file() &&
        read_file(e.path().string()).find("a write to keep") != std::string::npos)
      in_a_segment = true;
  EXPECT_TRUE(in_a_segment) << "the worker wrote the request into the queue's segment file";
  auto r = c.Get("/up");
  ASSERT_TRUE(r) << "the worker still serves after the reload";
  EXPECT_EQ(r->status, 200);
  auto added = c.Get("/second");
  ASSERT_TRUE(added);
  EXPECT_EQ(added->status, 200) << "the cluster the reload added: " << added->body;
  const auto admin = threads_named(gw.pid(), "sluice-admin-0");
  ASSERT_EQ(admin.size(), 1u);
  EXPECT_FALSE(shares_file_table(gw.pid(), admin[0]));
  const std::string log = gw.log();
  EXPECT_EQ(log.find(file_reload), log.rfind(file_reload))
      << "the queue was built by the POST alone\n"
      << log;
}

// The admin listener is bound on its own thread; a port already taken still fails the start
// with the error users saw before, and the process exits 1.
TEST(FileTables, ATakenAdminPortStillFailsTheStart) {
  testing::TakenPort taken;
  const std::string port = std::to_string(taken.port());
  TempDir dir;
  const auto path = dir.write("taken.yaml",
                              "workers: 1\nlisten: 127.0.0.1:0\n"
                              "admin: { listen: 127.0.0.1:" +
                                  port +
                                  " }\n"
                                  "routes: [ { handler: { type: echo } } ]\n");
  auto r = run_sluice("run -c " + path + " 2>&1 & p=$!; sleep 3; kill $p 2>/dev/null; wait $p");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("admin: cannot listen on 127.0.0.1:" + port + ": Address already in use"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace sluice::testing
