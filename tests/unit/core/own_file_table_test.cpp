#include "core/own_file_table.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <latch>
#include <mutex>
#include <string>
#include <thread>

#include "support/thread_files.hpp"

namespace sluice::detail {
namespace {

using sluice::testing::descriptor_targets;
using sluice::testing::kOwnFileTables;
using sluice::testing::shares_file_table;

// A thread that leaves the shared table first thing, then runs what it is handed, until the end
// of the test.
class LeavingThread {
 public:
  LeavingThread()
      : thread_([this] {
          left_ = leave_shared_file_table("test");
          tid_ = ::gettid();
          started_.count_down();
          std::unique_lock lock(mu_);
          while (true) {
            wake_.wait(lock, [&] { return job_ || stop_; });
            if (!job_) return;
            job_();
            job_ = nullptr;
            done_.notify_all();
          }
        }) {
    started_.wait();
  }
  ~LeavingThread() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  bool left() const { return left_; }
  pid_t tid() const { return tid_; }
  // Runs `fn` on the thread and waits for it.
  void run(std::function<void()> fn) {
    std::unique_lock lock(mu_);
    job_ = std::move(fn);
    wake_.notify_all();
    done_.wait(lock, [&] { return !job_; });
  }

 private:
  bool left_ = false;
  pid_t tid_ = 0;
  std::latch started_{1};
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::function<void()> job_;
  bool stop_ = false;
  std::thread thread_;
};

// A loopback TCP listener on port 0.
int listener(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// A blocking connect to 127.0.0.1:port; the socket, or -1 with errno.
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

TEST(OwnFileTable, TheThreadHoldsOnlyTheStandardDescriptors) {
  if (!kOwnFileTables) GTEST_SKIP() << "ThreadSanitizer build: the table stays shared";
  int port = 0;
  const int listen_fd = listener(port);
  ASSERT_GE(listen_fd, 3);
  LeavingThread t;
  ASSERT_TRUE(t.left());
  EXPECT_FALSE(shares_file_table(::getpid(), t.tid()));
  EXPECT_TRUE(shares_file_table(::getpid(), ::gettid())) << "kcmp itself must work";
  for (const auto& [fd, target] : descriptor_targets(::getpid(), t.tid()))
    EXPECT_LE(fd, 2) << fd << " -> " << target << " was copied into the thread's table";
  int flags = 0, error = 0;
  t.run([&] {
    flags = ::fcntl(listen_fd, F_GETFD);
    error = errno;
  });
  EXPECT_EQ(flags, -1);
  EXPECT_EQ(error, EBADF);
  ::close(listen_fd);
}

// The thread's table must not keep the process's sockets open: a copy would keep a listener
// accepting into a backlog nobody reads.
TEST(OwnFileTable, AListenerClosedByTheMainThreadStopsAccepting) {
  if (!kOwnFileTables) GTEST_SKIP() << "ThreadSanitizer build: the table stays shared";
  int port = 0;
  const int listen_fd = listener(port);
  ASSERT_GE(listen_fd, 0);
  LeavingThread t;
  ASSERT_TRUE(t.left());
  ::close(listen_fd);
  const int c = connect_to(port);
  const int error = errno;
  EXPECT_EQ(c, -1) << "the closed listener still accepts: a copy of it is open";
  EXPECT_EQ(error, ECONNREFUSED);
  if (c >= 0) ::close(c);
}

// ... nor keep a connection open: the peer must see the FIN when the main thread closes it.
TEST(OwnFileTable, AConnectionClosedByTheMainThreadSendsItsFin) {
  if (!kOwnFileTables) GTEST_SKIP() << "ThreadSanitizer build: the table stays shared";
  int port = 0;
  const int listen_fd = listener(port);
  ASSERT_GE(listen_fd, 0);
  const int client = connect_to(port);
  ASSERT_GE(client, 0);
  const int server = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(server, 0);
  LeavingThread t;
  ASSERT_TRUE(t.left());
  ::close(server);
  timeval two_seconds{2, 0};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof two_seconds);
  char byte;
  EXPECT_EQ(::read(client, &byte, 1), 0) << "no FIN within 2 s: a copy of the socket is open";
  ::close(client);
  ::close(listen_fd);
}

// What the thread opens is in its table only, and closing it there leaves the main thread's
// descriptor of the same number alone.
TEST(OwnFileTable, WhatTheThreadOpensIsItsOwn) {
  if (!kOwnFileTables) GTEST_SKIP() << "ThreadSanitizer build: the table stays shared";
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  LeavingThread t;
  ASSERT_TRUE(t.left());
  const std::string path =
      std::filesystem::temp_directory_path() / ("sluice_own_table_" + std::to_string(::getpid()));
  int fd = -1;
  t.run([&] { fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600); });
  ASSERT_GE(fd, 3);
  EXPECT_EQ(fd, 3) << "the lowest free number of a table holding 0, 1 and 2";
  std::error_code ec;
  EXPECT_NE(std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec), path)
      << "the thread's file is in the main thread's table";
  t.run([&] { ::close(fd); });
  EXPECT_EQ(::write(pipe_fds[1], "x", 1), 1) << "the main thread's descriptors are untouched";
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  std::filesystem::remove(path);
}

// A process-directed signal must not run its handler there: Asio's handler writes to the
// process's pipe by number, which names nothing (or another file) in the thread's table.
TEST(OwnFileTable, AsynchronousSignalsAreBlockedOnTheThread) {
  LeavingThread t;
  sigset_t mask;
  t.run([&] { ::pthread_sigmask(SIG_BLOCK, nullptr, &mask); });
  for (int sig : {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE, SIGCHLD})
    EXPECT_TRUE(::sigismember(&mask, sig)) << sig;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
    EXPECT_FALSE(::sigismember(&mask, sig)) << "a fault's handler must still run: " << sig;
  sigset_t main_mask;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &main_mask);
  EXPECT_FALSE(::sigismember(&main_mask, SIGUSR1)) << "only the leaving thread blocks them";
}

}  // namespace
}  // namespace sluice::detail
