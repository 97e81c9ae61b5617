// AdminThread — the admin listener on a thread that has a file table of its own
// (core/own_file_table.hpp). The thread leaves the workers' table first, then makes everything
// the listener uses: its io_context (epoll, eventfd, timerfd), the acceptor and every admin
// connection. So with one worker (on the main thread) no other thread shares the worker's table
// and its socket calls take no file reference, with the admin listener on (the default).
//
//   AdminThread admin(limits, std::make_shared<AdminApi>(gateway));
//   if (auto error = admin.start("127.0.0.1", 9901); !error.empty()) fail("admin: " + error);
//   admin.port();   // the bound port
//   admin.stop();   // from any other thread: the admin thread drains, stops and joins
//
// No other thread may act on the listener's descriptors, not even through Asio (a post to its
// io_context writes to its eventfd by number, which in another table is another file): stop()
// raises a flag the thread polls (kStopPoll). For the same reason the admin thread must not act
// on the workers' descriptors: what an admin request does to the workers' world (a reload, a
// queue's files) is handed to the main thread (Gateway::run_for_admin).
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/dispatcher.hpp"
#include "server/limits.hpp"
#include "server/server.hpp"

namespace sluice::gateway {

class AdminThread {
 public:
  // How often the admin thread looks at the stop flag: stop() returns within about this long.
  static constexpr auto kStopPoll = std::chrono::milliseconds(50);
  // After stop(), how long open admin connections get to finish their answer.
  static constexpr auto kDrainLimit = std::chrono::seconds(2);

  AdminThread(server::ServerLimits limits, std::shared_ptr<server::Dispatcher> dispatcher);
  ~AdminThread();  // stop()
  AdminThread(const AdminThread&) = delete;
  AdminThread& operator=(const AdminThread&) = delete;

  // Starts the thread and waits until it has bound host:port. Returns the listen error (the
  // thread has then ended), empty when the listener accepts.
  std::string start(const std::string& host, unsigned short port);
  unsigned short port() const { return port_; }
  // The listener's connection counts (for the connection metrics); zeros once stopped.
  server::Server::ConnectionCounts connection_counts() const;
  // Asks the thread to close the listener, let its connections end (idle ones at once, busy
  // ones after their answer, at most kDrainLimit) and end; joins it. Idempotent.
  void stop();

 private:
  void run(const std::string& host, unsigned short port, std::promise<std::string>& bound);

  server::ServerLimits limits_;
  std::shared_ptr<server::Dispatcher> dispatcher_;
  std::atomic<unsigned short> port_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex server_mutex_;   // server_ is cleared before the thread destroys it
  server::Server* server_ = nullptr;  // owned by the thread
  std::thread thread_;
};

}  // namespace sluice::gateway
