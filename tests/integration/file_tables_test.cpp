// The background threads' file tables, on the real binary (core/own_file_table.hpp): with one
// worker (on the main thread) and the access log, tracing and health checks on, no other thread
// shares the worker's file table, none holds a socket of the worker's, and the log, its reopen on
// SIGUSR1, stdout logging and the export still work; an exporter started by a reload holds no
// copy of the worker's upstream connections, whose peers see the FIN when the worker closes them.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/eventually.hpp"
#include "support/otlp_collector.hpp"
#include "support/raw_upstream.hpp"
#include "support/sluice_process.hpp"
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

}  // namespace
}  // namespace sluice::testing
