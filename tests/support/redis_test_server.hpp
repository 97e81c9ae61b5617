// RedisTestServer — starts a throw-away redis-server on 127.0.0.1 and a free port for a test or
// a benchmark (no persistence), and kills it when it goes out of scope.
//
//   RedisTestServer redis;                       // or RedisTestServer redis({"--requirepass",
//   "s"}); if (!RedisTestServer::available()) GTEST_SKIP(); ASSERT_TRUE(redis.start());
//   redis.command({"SCRIPT", "FLUSH"});  redis.kill();
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace sluice::testing {

class RedisTestServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";
  static bool available() { return ::access(kBinary, X_OK) == 0; }

  explicit RedisTestServer(std::vector<std::string> extra_args = {})
      : extra_(std::move(extra_args)), port_(free_port()) {}
  ~RedisTestServer() { kill(); }
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  int port() const { return port_; }
  bool running() const { return pid_ > 0; }

  // Starts (or restarts, on the same port) and waits until it answers PING.
  bool start() {
    if (pid_ > 0) return true;
    std::vector<std::string> args = {kBinary,
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--daemonize",
                                     "no",
                                     "--enable-debug-command",
                                     "yes",
                                     "--loglevel",
                                     "warning"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, kBinary, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return false;
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      redisContext* c = redisConnect("127.0.0.1", port_);
      if (c != nullptr && c->err == 0) {
        redisFree(c);
        return true;
      }
      if (c != nullptr) redisFree(c);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill();
    return false;
  }

  // SIGKILL: the way a crash looks to clients (no graceful close of the listener first).
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // A synchronous command on a fresh connection; the reply as text ("" on failure), arrays
  // joined with spaces. `auth` is sent first when not empty.
  std::string command(const std::vector<std::string>& argv, const std::string& auth = "") const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return "";
    }
    if (!auth.empty()) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %s", auth.c_str()));
      if (r != nullptr) freeReplyObject(r);
    }
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
    std::string out = r != nullptr ? text(r) : "";
    if (r != nullptr) freeReplyObject(r);
    redisFree(c);
    return out;
  }

 private:
  static std::string text(const redisReply* r) {
    switch (r->type) {
      case REDIS_REPLY_INTEGER:
        return std::to_string(r->integer);
      case REDIS_REPLY_ARRAY: {
        std::string out;
        for (size_t i = 0; i < r->elements; ++i) {
          if (i > 0) out += ' ';
          out += text(r->element[i]);
        }
        return out;
      }
      case REDIS_REPLY_NIL:
        return "(nil)";
      default:
        return std::string(r->str, r->len);
    }
  }

  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  std::vector<std::string> extra_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace sluice::testing
