#include "gateway/admin/admin_thread.hpp"

#include <pthread.h>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <future>
#include <optional>

#include "core/own_file_table.hpp"
#include "server/worker_pool.hpp"

namespace sluice::gateway {

AdminThread::AdminThread(server::ServerLimits limits,
                         std::shared_ptr<server::Dispatcher> dispatcher)
    : limits_(limits), dispatcher_(std::move(dispatcher)) {}

AdminThread::~AdminThread() {
  stop();
}

std::string AdminThread::start(const std::string& host, unsigned short port) {
  std::promise<std::string> bound;
  auto result = bound.get_future();
  thread_ = std::thread([this, host, port, &bound] { run(host, port, bound); });
  std::string error = result.get();
  if (!error.empty()) thread_.join();
  return error;
}

void AdminThread::run(const std::string& host, unsigned short port,
                      std::promise<std::string>& bound) {
  pthread_setname_np(pthread_self(), "sluice-admin-0");
  detail::leave_shared_file_table("admin listener");
  // Everything from here on is made in this thread's table, and destroyed here too (an
  // io_context's destructor closes its epoll and eventfd by number).
  auto pool = std::make_unique<server::WorkerPool>(1, "sluice-admin");
  auto server = std::make_unique<server::Server>(*pool, limits_, dispatcher_, "admin");
  if (auto error = server->listen(host, port); !error.empty()) {
    server.reset();
    pool.reset();
    bound.set_value(error);  // `bound` lives on start()'s stack: nothing touches it after this
    return;
  }
  port_ = server->port();
  {
    std::lock_guard lock(server_mutex_);
    server_ = server.get();
  }
  pool->start(/*caller_runs_first=*/true);
  server->start();
  bool sessions_left = false;
  {
    boost::asio::steady_timer tick(pool->context(0));
    std::optional<std::chrono::steady_clock::time_point> drain_until;
    std::function<void()> arm = [&] {
      tick.expires_after(drain_until ? std::chrono::milliseconds(10) : kStopPoll);
      tick.async_wait([&](const boost::system::error_code& ec) {
        if (ec) return;
        if (!drain_until && stopping_.load(std::memory_order_acquire)) {
          // No new admin connection; idle ones close now, busy ones after their answer.
          server->begin_drain();
          drain_until = std::chrono::steady_clock::now() + kDrainLimit;
        }
        if (drain_until &&
            (server->connections() == 0 || std::chrono::steady_clock::now() >= *drain_until)) {
          sessions_left = server->connections() > 0;
          return pool->stop();
        }
        arm();
      });
    };
    arm();
    bound.set_value({});
    pool->run_first_here();
  }
  {
    std::lock_guard lock(server_mutex_);
    server_ = nullptr;
  }
  // A session is owned by its pending operations, which the io_context destroys with itself,
  // and its destructor tells its Server: the server must outlive the context then, and its own
  // acceptor and timers must not (they belong to the context). With every session gone both
  // are destroyed in order; with one left after kDrainLimit the Server is left allocated (its
  // descriptors close with this thread's table when the thread ends).
  if (sessions_left) {
    spdlog::warn("admin listener: {} connections still open at exit", server->connections());
    (void)server.release();
  }
  server.reset();
  pool.reset();
}

server::Server::ConnectionCounts AdminThread::connection_counts() const {
  std::lock_guard lock(server_mutex_);
  return server_ != nullptr ? server_->connection_counts() : server::Server::ConnectionCounts{};
}

void AdminThread::stop() {
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

}  // namespace sluice::gateway
