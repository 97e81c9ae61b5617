#include "gateway/proxy/connection_pool.hpp"

#include <algorithm>

namespace sluice::gateway::proxy {

void ConnectionPool::expire(std::deque<std::shared_ptr<UpstreamConnection>>& list, SteadyTime now) {
  while (!list.empty() && now - list.front()->idle_since >= idle_timeout_) {
    list.front()->idle_token++;
    list.pop_front();
  }
}

std::shared_ptr<UpstreamConnection> ConnectionPool::take(std::size_t endpoint, SteadyTime now) {
  auto& list = idle_[endpoint];
  expire(list, now);
  while (!list.empty()) {
    auto conn = std::move(list.back());
    list.pop_back();
    // The readiness wait stays queued: it completes with the answer and, its token stale, does
    // nothing. Cancelling it would post a completion now (a reactor wake-up per request).
    conn->idle_token++;
    if (conn->socket.is_open()) return conn;
  }
  return nullptr;
}

void ConnectionPool::put(std::shared_ptr<UpstreamConnection> conn, SteadyTime now) {
  auto& list = idle_[conn->endpoint];
  expire(list, now);
  if (max_per_endpoint_ <= 0) return;
  if (static_cast<int>(list.size()) >= max_per_endpoint_) {
    list.front()->idle_token++;
    list.pop_front();
  }
  conn->idle_since = now;
  conn->idle_token++;
  watch(conn);
  list.push_back(std::move(conn));
}

// An idle connection becomes readable only when the upstream closed it, reset it or sent bytes
// nobody asked for: in every case it can no longer carry a request.
void ConnectionPool::watch(const std::shared_ptr<UpstreamConnection>& conn) {
  std::weak_ptr<UpstreamConnection> weak = conn;
  conn->socket.async_wait(boost::asio::ip::tcp::socket::wait_read,
                          [this, weak, token = conn->idle_token](boost::system::error_code ec) {
                            if (ec == boost::asio::error::operation_aborted) return;
                            auto c = weak.lock();
                            // Still idle in this pool (same token): the pool, which owns it, is
                            // alive too.
                            if (c && c->idle_token == token) on_readable(c.get());
                          });
}

void ConnectionPool::on_readable(UpstreamConnection* conn) {
  auto& list = idle_[conn->endpoint];
  auto it = std::find_if(list.begin(), list.end(), [&](const auto& c) { return c.get() == conn; });
  if (it == list.end()) return;
  (*it)->idle_token++;
  list.erase(it);
}

}  // namespace sluice::gateway::proxy
