#include "server/server.hpp"

#include <sys/socket.h>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>

#include "server/session.hpp"
#include "server/worker_cpus.hpp"

namespace sluice::server {

namespace asio = boost::asio;
using asio::ip::tcp;

struct Server::Acceptor {
  Acceptor(asio::io_context& ctx, int w) : acceptor(ctx), worker(w) {}
  tcp::acceptor acceptor;
  int worker;
};

Server::Server(WorkerPool& pool, ServerLimits limits, std::shared_ptr<Dispatcher> dispatcher,
               std::string name, ListenerOptions options)
    : pool_(pool),
      limits_(limits),
      options_(std::move(options)),
      tls_(options_.tls),
      dispatcher_(std::move(dispatcher)),
      name_(std::move(name)),
      sessions_(static_cast<std::size_t>(pool.size())) {}

Server::~Server() = default;

std::string Server::listen(const std::string& host, unsigned short port) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return "invalid listen address \"" + host + "\": " + ec.message();
  if (port != 0) {
    // SO_REUSEPORT would let a second sluice silently share a port that is already taken;
    // a plain bind first makes "address in use" an error, as users expect.
    tcp::acceptor probe(pool_.context(0));
    tcp::endpoint endpoint(address, port);
    probe.open(endpoint.protocol(), ec);
    if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);  // TIME_WAIT is fine
    if (!ec) probe.bind(endpoint, ec);
    if (ec) return "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
  }
  for (int w = 0; w < pool_.size(); ++w) {
    auto a = std::make_unique<Acceptor>(pool_.context(w), w);
    tcp::endpoint endpoint(address, port_ != 0 ? port_ : port);
    a->acceptor.open(endpoint.protocol(), ec);
    if (!ec) a->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) {
      // One acceptor per worker on the same port: the kernel spreads connections over them.
      int one = 1;
      if (::setsockopt(a->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) !=
          0) {
        return "setsockopt(SO_REUSEPORT) failed";
      }
      // A pinned worker's listener takes the connections that arrive on its CPU.
      if (const int cpu = pool_.cpu(w); cpu >= 0) {
        if (auto error = steer_connections_to_cpu(a->acceptor.native_handle(), cpu);
            !error.empty()) {
          return "cannot listen on " + host + ":" + std::to_string(endpoint.port()) + ": " + error;
        }
      }
    }
    if (!ec) a->acceptor.bind(endpoint, ec);
    if (!ec) a->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return "cannot listen on " + host + ":" + std::to_string(endpoint.port()) + ": " +
             ec.message();
    }
    port_ = a->acceptor.local_endpoint().port();
    acceptors_.push_back(std::move(a));
  }
  return {};
}

void Server::start() {
  for (std::size_t i = 0; i < acceptors_.size(); ++i) {
    asio::post(acceptors_[i]->acceptor.get_executor(), [this, i] { accept(i); });
  }
  // Every timer exists before the first is armed: the workers already run, and a sweep reads
  // sweepers_ on its worker while a push_back here could reallocate it (ThreadSanitizer).
  for (int w = 0; w < pool_.size(); ++w)
    sweepers_.push_back(std::make_unique<asio::steady_timer>(pool_.context(w)));
  for (int w = 0; w < pool_.size(); ++w)
    sweep(w);
}

// Read and write deadlines of all sessions of a worker, checked ten times a second: cheaper
// than arming a timer for every read, and precise enough for timeouts of seconds.
//
// Expired reads are cancelled at most kExpiriesPerTurn at a time. Each cancelled read becomes
// a handler on this worker (a 408 and a close), queued ahead of whatever a new client needs;
// 10,000 slowloris connections timing out in one sweep made a normal client wait over a
// second under ASan (docs/RELIABILITY.md). The rest of the scan is posted after them, so
// the reactor and other clients' handlers run between two turns. The next sweep is armed when
// the scan is complete, so two scans never overlap.
namespace {
constexpr std::size_t kExpiriesPerTurn = 32;
}

void Server::sweep(int worker) {
  auto& timer = *sweepers_[static_cast<std::size_t>(worker)];
  timer.expires_after(std::chrono::milliseconds(100));
  timer.async_wait([this, worker](boost::system::error_code ec) {
    if (ec) return;
    auto live = std::make_shared<std::vector<std::shared_ptr<Session>>>();
    {
      auto& own = sessions_[static_cast<std::size_t>(worker)];
      std::lock_guard lock(own.mutex);
      live->reserve(own.sessions.size());
      for (Session* s : own.sessions) {
        auto sp = std::static_pointer_cast<Session>(s->weak_from_this().lock());
        if (sp) live->push_back(std::move(sp));
      }
    }
    sweep_part(worker, std::move(live), 0);
  });
}

void Server::sweep_part(int worker, std::shared_ptr<std::vector<std::shared_ptr<Session>>> live,
                        std::size_t from) {
  const auto now = std::chrono::steady_clock::now();
  std::size_t expired = 0;
  std::size_t i = from;
  while (i < live->size() && expired < kExpiriesPerTurn) {
    if ((*live)[i]->check_deadline(now)) ++expired;
    (*live)[i++].reset();  // a session closed by this turn is freed now, not after the scan
  }
  if (i < live->size()) {
    asio::post(pool_.context(worker),
               [this, worker, live = std::move(live), i] { sweep_part(worker, live, i); });
    return;
  }
  sweep(worker);
}

void Server::accept(std::size_t index) {
  Acceptor& a = *acceptors_[index];
  a.acceptor.async_accept(
      pool_.context(a.worker), [this, index](boost::system::error_code ec, Session::Socket socket) {
        Acceptor& acc = *acceptors_[index];
        if (ec) {
          if (ec == asio::error::operation_aborted || !acc.acceptor.is_open()) return;
          spdlog::warn("{}: accept failed: {}", name_, ec.message());
          return accept(index);
        }
        if (draining()) return;
        if (connections() >= limits_.max_connections) {
          boost::system::error_code ignored;
          socket.close(ignored);  // over the limit: refuse at once rather than queue
          refused_.fetch_add(1, std::memory_order_relaxed);
        } else {
          std::make_shared<Session>(*this, acc.worker, std::move(socket))->start();
        }
        accept(index);
      });
}

Server::ConnectionCounts Server::connection_counts() const {
  ConnectionCounts out{.open = connections(),
                       .accepted = accepted_.load(std::memory_order_relaxed),
                       .closed = closed_.load(std::memory_order_relaxed),
                       .refused = refused_.load(std::memory_order_relaxed)};
  for (const auto& own : sessions_) {
    std::lock_guard lock(own.mutex);
    out.accepted_by_worker.push_back(own.accepted);
  }
  return out;
}

void Server::session_opened(int worker, Session* s) {
  connections_.fetch_add(1, std::memory_order_acq_rel);
  accepted_.fetch_add(1, std::memory_order_relaxed);
  auto& own = sessions_[static_cast<std::size_t>(worker)];
  std::lock_guard lock(own.mutex);
  own.sessions.insert(s);
  ++own.accepted;
}

void Server::session_closed(int worker, Session* s) {
  {
    auto& own = sessions_[static_cast<std::size_t>(worker)];
    std::lock_guard lock(own.mutex);
    own.sessions.erase(s);
  }
  connections_.fetch_sub(1, std::memory_order_acq_rel);
  closed_.fetch_add(1, std::memory_order_relaxed);
}

void Server::begin_drain() {
  draining_.store(true, std::memory_order_release);
  for (auto& a : acceptors_) {
    asio::post(a->acceptor.get_executor(), [acc = a.get()] {
      boost::system::error_code ec;
      acc->acceptor.close(ec);
    });
  }
  for (int w = 0; w < pool_.size(); ++w) {
    asio::post(pool_.context(w), [this, w] {
      std::vector<std::shared_ptr<Session>> live;
      {
        auto& own = sessions_[static_cast<std::size_t>(w)];
        std::lock_guard lock(own.mutex);
        for (Session* s : own.sessions) {
          auto sp = std::static_pointer_cast<Session>(s->weak_from_this().lock());
          if (sp) live.push_back(std::move(sp));
        }
      }
      for (auto& s : live)
        s->close_if_idle();
    });
  }
}

}  // namespace sluice::server
