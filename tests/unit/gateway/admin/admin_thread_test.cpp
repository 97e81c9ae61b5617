// AdminThread on real sockets: its thread has a file table of its own holding its listener (none
// of which the starting thread has), it answers, a taken port comes back as start()'s error, and
// stop() ends it from another thread (no post to its io_context, whose descriptors that thread
// does not have).
#include "gateway/admin/admin_thread.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "support/taken_port.hpp"
#include "support/thread_files.hpp"

namespace sluice::gateway {
namespace {

using sluice::testing::kOwnFileTables;
using sluice::testing::shares_file_table;
using sluice::testing::sockets_of;
using sluice::testing::threads_named;

// Answers every request with 200 "admin" and records the thread it ran on.
class Answer final : public server::Dispatcher {
 public:
  void dispatch(Exchange& ex, server::DispatchState*, std::function<void()> done) override {
    tid = ::gettid();
    ex.answer(200, "text/plain", "admin");
    done();
  }
  std::atomic<pid_t> tid{0};
};

// One request on a fresh connection; the whole answer.
std::string get(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  at.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)::write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

TEST(AdminThread, ServesFromAFileTableOfItsOwn) {
  auto answer = std::make_shared<Answer>();
  AdminThread admin(server::ServerLimits{}, answer);
  ASSERT_EQ(admin.start("127.0.0.1", 0), "");
  ASSERT_NE(admin.port(), 0);
  const std::string reply = get(admin.port());
  EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply;
  EXPECT_NE(reply.find("admin"), std::string::npos) << reply;
  const pid_t tid = answer->tid;
  ASSERT_NE(tid, 0);
  EXPECT_NE(tid, ::gettid()) << "answered on the admin thread";
  const auto named = threads_named(::getpid(), "sluice-admin-0");
  EXPECT_EQ(named, std::vector<pid_t>{tid});
  if (kOwnFileTables) {
    EXPECT_FALSE(shares_file_table(::getpid(), tid));
    const auto admin_sockets = sockets_of(::getpid(), tid);
    EXPECT_FALSE(admin_sockets.empty()) << "the listener is in the admin thread's table";
    for (const auto& s : sockets_of(::getpid(), ::getpid()))
      EXPECT_EQ(admin_sockets.count(s), 0u) << s << " is in the starter's table too";
  }
  EXPECT_EQ(admin.connection_counts().accepted, 1u);
  const auto before = std::chrono::steady_clock::now();
  admin.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(2));
  EXPECT_TRUE(threads_named(::getpid(), "sluice-admin-0").empty());
  EXPECT_EQ(get(admin.port()), "") << "the listener is closed";
  EXPECT_EQ(admin.connection_counts().accepted, 0u) << "zeros once stopped";
}

TEST(AdminThread, ATakenPortIsTheStartError) {
  testing::TakenPort taken;
  const auto port = taken.port();
  AdminThread admin(server::ServerLimits{}, std::make_shared<Answer>());
  EXPECT_EQ(admin.start("127.0.0.1", port),
            "cannot listen on 127.0.0.1:" + std::to_string(port) + ": Address already in use");
  // start() joined the thread; the kernel drops its /proc/PID/task entry a moment after the
  // join returns (the join wakes on the thread's exit, the entry goes when the task is reaped).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!threads_named(::getpid(), "sluice-admin-0").empty() &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(threads_named(::getpid(), "sluice-admin-0").empty()) << "the thread has ended";
}

}  // namespace
}  // namespace sluice::gateway
