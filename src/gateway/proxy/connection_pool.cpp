#include "gateway/proxy/connection_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace sluice::gateway::proxy {

bool still_open(boost::asio::ip::tcp::socket& socket) {
  if (!socket.is_open()) return false;
  char byte = 0;
  const auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0: the upstream closed (FIN); > 0: bytes nobody asked for (the stream is out of step);
  // an error other than "nothing to read": reset.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void ConnectionPool::expire(std::deque<std::unique_ptr<UpstreamConnection>>& list, SteadyTime now) {
  while (!list.empty() && now - list.front()->idle_since >= idle_timeout_)
    list.pop_front();
}

std::unique_ptr<UpstreamConnection> ConnectionPool::take(std::size_t endpoint, SteadyTime now) {
  auto& list = idle_[endpoint];
  expire(list, now);
  while (!list.empty()) {
    auto conn = std::move(list.back());
    list.pop_back();
    if (still_open(conn->socket)) return conn;
  }
  return nullptr;
}

void ConnectionPool::put(std::unique_ptr<UpstreamConnection> conn, SteadyTime now) {
  auto& list = idle_[conn->endpoint];
  expire(list, now);
  if (max_per_endpoint_ <= 0) return;
  if (static_cast<int>(list.size()) >= max_per_endpoint_) list.pop_front();
  conn->idle_since = now;
  list.push_back(std::move(conn));
}

}  // namespace sluice::gateway::proxy
