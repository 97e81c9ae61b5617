// RedisClient — a dedicated Redis I/O thread running one io_context and N pipelined
// RedisConnections used round-robin. Any thread may call execute(); the command is handed to the
// I/O thread with asio::post and the reply comes back through the callback, on the I/O thread.
//
//   RedisClient client(options, /*connections=*/2, {});
//   client.execute({"PING"}, [](RedisReply r) { /* re-post to your own executor */ });
//   client.schedule(std::chrono::milliseconds(100), [] { /* on the I/O thread */ });
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "resilience/redis/redis_connection.hpp"

namespace sluice::resilience::redis {

class RedisClient {
 public:
  // Starts the I/O thread and begins connecting every connection at once.
  RedisClient(RedisConnectionOptions options, int connections, RedisConnectionHooks hooks);
  // stop(). Must not run on the I/O thread (that is, not from a reply callback).
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Thread-safe. `done` runs exactly once: on the I/O thread, or inline when stopped.
  void execute(std::vector<std::string> argv, ReplyCallback done);

  // Runs `fn` on the I/O thread after `delay`; dropped (never run) when the client stops.
  void schedule(std::chrono::nanoseconds delay, std::function<void()> fn);

  // Closes every connection (pending commands fail with kConnection) and joins the thread.
  void stop();

  // The most recent connection error, empty when none since the last successful handshake.
  std::string last_error() const;
  // Commands written and not yet answered or timed out, over all connections (approximate).
  std::size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  void dispatch(const std::vector<std::string>& argv, ReplyCallback done);

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<RedisConnection>> connections_;  // touched on the I/O thread only
  std::size_t next_ = 0;
  std::map<std::uint64_t, std::shared_ptr<boost::asio::steady_timer>> timers_;
  std::uint64_t next_timer_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> in_flight_{0};
  mutable std::mutex error_mutex_;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace sluice::resilience::redis
