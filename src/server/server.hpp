// Server — an HTTP/1.1 listener on a worker pool: one SO_REUSEPORT acceptor per worker,
// keep-alive, pipelining, limits, and a graceful drain.
//
//   Server server(pool, limits, dispatcher, "public");
//   server.listen("127.0.0.1", 0);  // server.port() tells the bound port
//   server.start();
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "server/dispatcher.hpp"
#include "server/limits.hpp"
#include "server/worker_pool.hpp"

namespace sluice::server {

class Session;
class TlsContext;

// What a listener speaks besides plain HTTP/1.1.
struct ListenerOptions {
  // Each connection starts with a PROXY protocol v1/v2 header (server/proxy_protocol.hpp),
  // read within limits.header_timeout; its source address becomes the client's.
  bool proxy_protocol = false;
  // Set: TLS on every connection (after the PROXY header, if any). Replaced on reload by
  // set_tls_context(); a connection keeps the context it began with.
  std::shared_ptr<const TlsContext> tls;
  // Called for each failed TLS handshake with its reason (a metric label).
  std::function<void(const char* reason)> on_tls_handshake_error;
  // Called for each completed TLS handshake: a resumed session or a full handshake.
  std::function<void(bool resumed)> on_tls_handshake;
  // Called for each connection closed before a valid PROXY header: invalid, timeout, closed.
  std::function<void(const char* reason)> on_proxy_protocol_error;
};

class Server {
 public:
  Server(WorkerPool& pool, ServerLimits limits, std::shared_ptr<Dispatcher> dispatcher,
         std::string name, ListenerOptions options = {});
  ~Server();

  // Binds one acceptor per worker. Returns an error message, empty on success.
  std::string listen(const std::string& host, unsigned short port);
  unsigned short port() const { return port_; }
  const std::string& name() const { return name_; }
  void start();
  // Stops accepting; connections that are idle are closed, busy ones close after their
  // current response. Safe to call from any thread.
  void begin_drain();
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  std::size_t connections() const { return connections_.load(std::memory_order_acquire); }
  // Since start: connections accepted (sessions opened), closed, and refused at once because
  // limits.max_connections was reached. Read at scrape time for the connection metrics.
  struct ConnectionCounts {
    std::uint64_t open = 0, accepted = 0, closed = 0, refused = 0;
    // Sessions opened by each worker: how the kernel spread the connections over the workers.
    std::vector<std::uint64_t> accepted_by_worker;
  };
  ConnectionCounts connection_counts() const;

  // Used by sessions.
  const ServerLimits& limits() const { return limits_; }
  const ListenerOptions& options() const { return options_; }
  std::shared_ptr<const TlsContext> tls_context() const { return tls_.load(); }
  // New certificates (a reload): new connections use them, open ones keep theirs.
  void set_tls_context(std::shared_ptr<const TlsContext> tls) { tls_.store(std::move(tls)); }
  void tls_handshake_failed(const char* reason) const {
    if (options_.on_tls_handshake_error) options_.on_tls_handshake_error(reason);
  }
  void tls_handshake_done(bool resumed) const {
    if (options_.on_tls_handshake) options_.on_tls_handshake(resumed);
  }
  void proxy_header_failed(const char* reason) const {
    if (options_.on_proxy_protocol_error) options_.on_proxy_protocol_error(reason);
  }
  Dispatcher& dispatcher() { return *dispatcher_; }
  void session_opened(int worker, Session* s);
  void session_closed(int worker, Session* s);

 private:
  struct Acceptor;
  void accept(std::size_t index);
  void sweep(int worker);
  void sweep_part(int worker, std::shared_ptr<std::vector<std::shared_ptr<Session>>> live,
                  std::size_t from);

  WorkerPool& pool_;
  ServerLimits limits_;
  ListenerOptions options_;
  std::atomic<std::shared_ptr<const TlsContext>> tls_;
  std::shared_ptr<Dispatcher> dispatcher_;
  std::string name_;
  unsigned short port_ = 0;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::uint64_t> accepted_{0};  // written once per connection, not per request
  std::atomic<std::uint64_t> closed_{0};
  std::atomic<std::uint64_t> refused_{0};
  // Sessions per worker, under that worker's mutex. A set: with 10,000 connections the linear
  // search of a vector on every close cost O(n) each, O(n^2) when they all time out.
  // The lock is only contended at shutdown, when the last reference of a session may drop on
  // another thread; but a worker writes its mutex and set on every accept and close, so each
  // worker's pair has cache lines of its own. Side by side (as the mutexes were, in one static
  // array) workers 0 and 1 wrote the same line from two cores: false sharing per connection.
  struct alignas(64) WorkerSessions {
    mutable std::mutex mutex;  // also taken by connection_counts() to read `accepted`
    std::unordered_set<Session*> sessions;
    std::uint64_t accepted = 0;  // sessions opened by this worker since start
  };
  std::vector<WorkerSessions> sessions_;
  std::vector<std::unique_ptr<boost::asio::steady_timer>> sweepers_;
};

}  // namespace sluice::server
