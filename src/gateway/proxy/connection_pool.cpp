#include "gateway/proxy/connection_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace sluice::gateway::proxy {

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

}  // namespace sluice::gateway::proxy
