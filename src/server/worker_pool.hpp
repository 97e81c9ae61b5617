// WorkerPool — N threads, each running its own io_context. Everything a connection does
// happens on the worker that accepted it.
//
//   WorkerPool pool(2);
//   pool.start();
//   boost::asio::post(pool.context(0), [] { /* on worker 0 */ });
//
// With one worker a process can run it on its own thread instead (start(true), then
// run_first_here()): a process with a single thread does not share its file table, so the
// kernel takes no file reference per socket call (fdget/fput, 2 % of a proxied request's CPU).
// Background threads that need none of the process's descriptors (access log writer, OTLP
// exporter, health checks) leave the table (core/own_file_table.hpp) and keep it so.
//
// With `cpus` (server/worker_cpus.hpp), worker i's thread pins itself to cpus[i] as it starts.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sluice::server {

class WorkerPool {
 public:
  // `on_thread_start(i)` runs first on worker i's thread (also when the caller runs worker 0).
  // `cpus`, when not empty, has one CPU per worker: the worker's thread pins itself to it.
  WorkerPool(int workers, std::string name, std::function<void(int)> on_thread_start = {},
             std::vector<int> cpus = {});
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return static_cast<int>(contexts_.size()); }
  boost::asio::io_context& context(int i) { return *contexts_[static_cast<std::size_t>(i)]; }
  // The CPU worker i is pinned to, or -1 when the workers are not pinned.
  int cpu(int i) const {
    return cpus_.empty() ? -1 : cpus_[static_cast<std::size_t>(i) % cpus_.size()];
  }
  // Starts one thread per worker; with `caller_runs_first`, worker 0 gets none: the caller
  // runs it with run_first_here().
  void start(bool caller_runs_first = false);
  // Runs worker 0 on the calling thread until stop().
  void run_first_here();
  void stop();  // stops every io_context and joins the threads

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  void run(std::size_t i, const std::string& thread_name);

  std::string name_;
  std::function<void(int)> on_thread_start_;
  std::vector<int> cpus_;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
};

// The io_context of the worker running the calling thread, or nullptr off the workers.
boost::asio::io_context* current_io_context();

}  // namespace sluice::server
