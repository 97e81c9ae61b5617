#include "upstream/connection_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <boost/asio/execution_context.hpp>
#include <mutex>

namespace sluice::upstream {

// The pools created on one io_context, closed when it shuts down. Shared with the pools: one
// destroyed later only finds the directory marked closed.
struct PoolDirectory {
  std::mutex mutex;
  std::vector<ConnectionPool*> pools;
  bool closed = false;
};

namespace {
class PoolCloser final : public boost::asio::execution_context::service {
 public:
  using key_type = PoolCloser;
  static inline boost::asio::execution_context::id id;
  explicit PoolCloser(boost::asio::execution_context& ctx)
      : service(ctx), directory_(std::make_shared<PoolDirectory>()) {}
  const std::shared_ptr<PoolDirectory>& directory() const { return directory_; }

 private:
  // Runs in the io_context's destructor. Services shut down newest first, and this one is
  // registered after the socket service (a pool is made on the first proxied request, when
  // sockets exist), so the sockets close while their service is still whole.
  void shutdown() override {
    std::lock_guard lock(directory_->mutex);
    directory_->closed = true;
    for (ConnectionPool* p : directory_->pools)
      p->clear();
    directory_->pools.clear();
  }
  std::shared_ptr<PoolDirectory> directory_;
};
}  // namespace

ConnectionPool::ConnectionPool(boost::asio::io_context& io, std::size_t endpoints,
                               int max_per_endpoint, std::chrono::milliseconds idle_timeout)
    : idle_(endpoints),
      max_per_endpoint_(max_per_endpoint),
      idle_timeout_(idle_timeout),
      directory_(boost::asio::use_service<PoolCloser>(io).directory()) {
  std::lock_guard lock(directory_->mutex);
  directory_->pools.push_back(this);
}

ConnectionPool::~ConnectionPool() {
  std::lock_guard lock(directory_->mutex);
  if (directory_->closed) return;
  std::erase(directory_->pools, this);
}

void ConnectionPool::clear() {
  for (auto& list : idle_)
    list.clear();
}

void ConnectionPool::expire(std::deque<std::shared_ptr<UpstreamConnection>>& list, SteadyTime now) {
  while (!list.empty() && now - list.front()->idle_since >= idle_timeout_) {
    list.pop_front();
  }
}

namespace {
// A connection idle for this long is checked before reuse; a younger one is trusted, and the
// rare race (the upstream closed it just now) costs UpstreamCall's one retry on a fresh one.
constexpr auto kCheckAfterIdle = std::chrono::seconds(1);

// Still open, and nothing waiting to be read (EOF, a reset, or bytes nobody asked for all mean
// it can no longer carry a request).
bool still_usable(UpstreamConnection& conn) {
  char byte;
  const auto n = ::recv(conn.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
}  // namespace

std::shared_ptr<UpstreamConnection> ConnectionPool::take(std::size_t endpoint, SteadyTime now) {
  auto& list = idle_[endpoint];
  expire(list, now);
  while (!list.empty()) {
    auto conn = std::move(list.back());
    list.pop_back();
    if (!conn->socket.is_open()) continue;
    if (now - conn->idle_since >= kCheckAfterIdle && !still_usable(*conn)) continue;
    return conn;
  }
  return nullptr;
}

void ConnectionPool::put(std::shared_ptr<UpstreamConnection> conn, SteadyTime now) {
  auto& list = idle_[conn->endpoint];
  expire(list, now);
  if (max_per_endpoint_ <= 0) return;
  if (static_cast<int>(list.size()) >= max_per_endpoint_) list.pop_front();
  conn->idle_since = now;
  list.push_back(std::move(conn));
}

}  // namespace sluice::upstream
