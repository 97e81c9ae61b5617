// ConnectionPool — the idle keep-alive connections of one worker to the endpoints of one
// cluster. Owned by the cluster, used only on its worker's thread (no locks). Idle connections
// are not watched (arming a readiness wait costs an epoll_ctl per request); a connection idle
// for more than a second is checked with a non-blocking peek when taken, and one that the
// upstream closed (EOF), reset or sent stray bytes on is dropped. A connection taken sooner is
// trusted: the rare race (a close in flight) is covered by UpstreamCall's one retry on a fresh
// connection. Idle ones past idle_timeout are closed on the next take or put.
//
//   auto conn = pool.take(endpoint, now);          // nullptr: connect a new one
//   ... request / response ...
//   pool.put(std::move(conn), now);                // only after a complete keep-alive exchange
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "net/drained_reads/drained_reads.hpp"
#include "sluice/clock.hpp"
#include "upstream/tls/upstream_tls.hpp"

namespace sluice::upstream {

// One connection to an endpoint; on a TLS cluster `tls` wraps the socket once the handshake is
// done, and reads and writes go through it (read_some, write below). A pooled TLS connection
// keeps its session: the next request on it costs no handshake.
//
// An operation on the TLS stream keeps the connection alive until it completes: the stream's
// composed operations use its OpenSSL state, so dropping the connection with one pending (an
// upstream's early answer to an upload ends the call while a body write is still under way) freed
// it under the operation and crashed the process. Whoever drops a connection that is not pooled
// closes its socket first (UpstreamCall::end_try), so the pending operations end at once.
struct UpstreamConnection : std::enable_shared_from_this<UpstreamConnection> {
  UpstreamConnection(boost::asio::io_context& io, std::size_t endpoint_index)
      : socket(io), endpoint(endpoint_index) {}
  // A plain read skips the recv that would find nothing after a request went out
  // (net/drained_reads/drained_reads.hpp).
  template <class Handler>
  void read_some(boost::asio::mutable_buffer buffer, Handler&& handler) {
    if (tls)
      tls->async_read_some(buffer, keeping_alive(std::forward<Handler>(handler)));
    else
      reads.read_some(socket, buffer, std::forward<Handler>(handler));
  }
  template <class Buffers, class Handler>
  void write(const Buffers& buffers, Handler&& handler) {
    if (tls)
      boost::asio::async_write(*tls, buffers, keeping_alive(std::forward<Handler>(handler)));
    else
      boost::asio::async_write(socket, buffers, std::forward<Handler>(handler));
  }
  // `handler` with a reference to this connection, for an operation on `tls`.
  template <class Handler>
  auto keeping_alive(Handler&& handler) {
    return [keep = shared_from_this(), h = std::forward<Handler>(handler)](auto&&... args) mutable {
      h(std::forward<decltype(args)>(args)...);
    };
  }
  boost::asio::ip::tcp::socket socket;
  std::unique_ptr<UpstreamTls::Stream> tls;  // null: plain HTTP
  net::DrainedReads reads;           // plain HTTP: TCP_INQ on, and whether the next read must recv
  boost::beast::flat_buffer buffer;  // read buffer, kept with the connection
  std::size_t endpoint;
  SteadyTime idle_since{};
  int uses = 0;
};

class ConnectionPool {
 public:
  // `io` is the worker's io_context: the pool registers with it so that its idle sockets are
  // closed when that io_context shuts down, even if the pool (in a cluster, in a config) lives
  // longer — a socket destroyed after its io_context would touch freed reactor state.
  ConnectionPool(boost::asio::io_context& io, std::size_t endpoints, int max_per_endpoint,
                 std::chrono::milliseconds idle_timeout);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // The most recently used idle connection that is still open, or nullptr.
  std::shared_ptr<UpstreamConnection> take(std::size_t endpoint, SteadyTime now);
  // Keeps a connection after a complete exchange (closes it when the pool is full).
  void put(std::shared_ptr<UpstreamConnection> conn, SteadyTime now);
  std::size_t idle(std::size_t endpoint) const { return idle_[endpoint].size(); }
  // Closes every idle connection (the io_context is shutting down).
  void clear();

 private:
  void expire(std::deque<std::shared_ptr<UpstreamConnection>>& list, SteadyTime now);

  std::vector<std::deque<std::shared_ptr<UpstreamConnection>>> idle_;  // oldest first
  int max_per_endpoint_;
  std::chrono::milliseconds idle_timeout_;
  std::shared_ptr<struct PoolDirectory> directory_;  // the pools of this io_context
};

}  // namespace sluice::upstream
