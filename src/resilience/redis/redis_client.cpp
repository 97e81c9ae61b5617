#include "resilience/redis/redis_client.hpp"

#include <pthread.h>

#include <boost/asio/post.hpp>

namespace sluice::resilience::redis {

RedisClient::RedisClient(RedisConnectionOptions options, int connections,
                         RedisConnectionHooks hooks)
    : work_(boost::asio::make_work_guard(io_)) {
  auto on_error = hooks.on_error;
  hooks.on_error = [this, on_error](const std::string& why) {
    {
      std::lock_guard lock(error_mutex_);
      last_error_ = why;
    }
    if (on_error) on_error(why);
  };
  auto on_ready = hooks.on_ready;
  hooks.on_ready = [this, on_ready] {
    {
      std::lock_guard lock(error_mutex_);
      last_error_.clear();
    }
    if (on_ready) on_ready();
  };
  for (int i = 0; i < std::max(1, connections); ++i) {
    connections_.push_back(std::make_unique<RedisConnection>(io_, options, hooks));
  }
  boost::asio::post(io_, [this] {
    for (auto& c : connections_)
      c->start();
  });
  thread_ = std::thread([this] {
    // Named for ps/top and for the file-table checks (it shares the workers' table: see
    // core/own_file_table.hpp).
    pthread_setname_np(pthread_self(), "sluice-redis");
    io_.run();
  });
}

RedisClient::~RedisClient() {
  stop();
}

void RedisClient::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  boost::asio::post(io_, [this] {
    for (auto& c : connections_)
      c->close();
    for (auto& [id, timer] : timers_)
      timer->cancel();
    timers_.clear();
  });
  work_.reset();
  if (thread_.joinable()) thread_.join();
  // Commands posted while the thread was winding down still owe their caller an answer.
  io_.restart();
  io_.poll();
  connections_.clear();
  io_.poll();
}

void RedisClient::execute(std::vector<std::string> argv, ReplyCallback done) {
  if (stopping_.load(std::memory_order_acquire)) {
    done(RedisReply::failure_of(RedisFailure::kConnection, "redis client stopped"));
    return;
  }
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  boost::asio::post(io_, [this, argv = std::move(argv), done = std::move(done)]() mutable {
    dispatch(argv, [this, done = std::move(done)](RedisReply r) {
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      done(std::move(r));
    });
  });
}

void RedisClient::dispatch(const std::vector<std::string>& argv, ReplyCallback done) {
  if (stopping_.load(std::memory_order_acquire) || connections_.empty()) {
    done(RedisReply::failure_of(RedisFailure::kConnection, "redis client stopped"));
    return;
  }
  // Round-robin over ready connections; a connection still in its handshake is the second
  // choice (the command is pipelined behind AUTH/SELECT/SCRIPT LOAD).
  const std::size_t n = connections_.size();
  RedisConnection* chosen = nullptr;
  for (std::size_t i = 0; i < n && chosen == nullptr; ++i) {
    auto& c = connections_[(next_ + i) % n];
    if (c->state() == RedisConnection::State::kReady) chosen = c.get();
  }
  for (std::size_t i = 0; i < n && chosen == nullptr; ++i) {
    auto& c = connections_[(next_ + i) % n];
    if (c->can_send()) chosen = c.get();
  }
  next_ = (next_ + 1) % n;
  if (chosen == nullptr) chosen = connections_[next_].get();  // fails at once, with the reason
  chosen->send(argv, std::move(done));
}

void RedisClient::schedule(std::chrono::nanoseconds delay, std::function<void()> fn) {
  if (stopping_.load(std::memory_order_acquire)) return;
  boost::asio::post(io_, [this, delay, fn = std::move(fn)]() mutable {
    if (stopping_.load(std::memory_order_acquire)) return;
    const std::uint64_t id = next_timer_++;
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
    timers_.emplace(id, timer);
    timer->async_wait([this, id, fn = std::move(fn)](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled by stop()
      timers_.erase(id);
      fn();
    });
  });
}

std::string RedisClient::last_error() const {
  std::lock_guard lock(error_mutex_);
  return last_error_;
}

}  // namespace sluice::resilience::redis
