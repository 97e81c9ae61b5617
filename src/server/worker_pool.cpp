#include "server/worker_pool.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "server/worker_cpus.hpp"

namespace sluice::server {

namespace {
thread_local boost::asio::io_context* tls_context = nullptr;
}

boost::asio::io_context* current_io_context() {
  return tls_context;
}

WorkerPool::WorkerPool(int workers, std::string name, std::function<void(int)> on_thread_start,
                       std::vector<int> cpus)
    : name_(std::move(name)), on_thread_start_(std::move(on_thread_start)), cpus_(std::move(cpus)) {
  if (workers < 1) workers = 1;
  for (int i = 0; i < workers; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread (Asio then skips some
    // cross-thread wake-ups; it still locks, since other threads post to a worker).
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

WorkerPool::~WorkerPool() {
  stop();
}

namespace {
void run_worker(boost::asio::io_context& context, const std::string& thread_name) {
  tls_context = &context;
  for (;;) {
    try {
      context.run();
      break;
    } catch (const std::exception& e) {
      // Handlers catch their own errors; this is the last line so a worker never dies.
      spdlog::error("worker {}: uncaught exception: {}", thread_name, e.what());
    }
  }
  tls_context = nullptr;
}
}  // namespace

void WorkerPool::start(bool caller_runs_first) {
  for (std::size_t i = caller_runs_first ? 1 : 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] {
      std::string thread_name = name_ + "-" + std::to_string(i);
      pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
      run(i, thread_name);
    });
  }
}

void WorkerPool::run_first_here() {
  run(0, name_ + "-0");
}

void WorkerPool::run(std::size_t i, const std::string& thread_name) {
  // Before the first handler: the worker's listener already asks for this CPU's connections.
  if (const int c = cpu(static_cast<int>(i)); c >= 0) {
    if (auto error = pin_current_thread(c); !error.empty())
      spdlog::warn("worker {}: {}", thread_name, error);
  }
  if (on_thread_start_) on_thread_start_(static_cast<int>(i));
  run_worker(*contexts_[i], thread_name);
}

void WorkerPool::stop() {
  guards_.clear();
  for (auto& c : contexts_)
    c->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace sluice::server
