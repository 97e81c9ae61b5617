// The real server Session, driven in-process for the session and tls_client_hello fuzz
// targets: a Server (never listening) hands one end of a socketpair to a Session on a worker
// whose io_context this thread polls; the fuzz input is written to the other end in pieces,
// polling between them, so the session reads it as a client's bytes arriving over several
// reads. Then the client's side is shut (EOF) and the session must finish: no handler left and
// the connection closed. Every byte the session wrote is collected for the target to check.
//
//   SessionHarness h(limits, options, std::make_shared<EchoDispatcher>());
//   std::string answers = h.run(bytes, /*piece=*/7);
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server/server.hpp"
#include "server/session.hpp"
#include "server/worker_pool.hpp"
#include "sluice/body_stream.hpp"
#include "sluice/exchange.hpp"

namespace sluice::fuzz {

inline void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "session fuzz: %s\n", what);
  std::abort();
}

// A streamed response body of three pieces (no declared length: written chunked).
class ThreePieces final : public BodyStream {
 public:
  void read(ReadFn fn) override {
    ++n_;
    fn(BodyPiece{.data = n_ < 3 ? std::string_view("piece;") : std::string_view(),
                 .last = n_ >= 3});
  }
  std::optional<std::uint64_t> length() const override { return std::nullopt; }

 private:
  int n_ = 0;
};

// Answers every request at once: its method in X-Method (so the checker knows a HEAD answer has
// no body) and the body's length; a streamed request body is read to its end first; the target
// /stream is answered with a streamed body.
class EchoDispatcher final : public server::Dispatcher {
 public:
  void dispatch(Exchange& ex, server::DispatchState*, std::function<void()> done) override {
    auto& rq = ex.request();
    ex.response().set_status(200);
    ex.response().set_header("X-Method", rq.method());
    if (auto in = ex.request_body_stream()) return pump(ex, std::move(in), 0, std::move(done));
    answer(ex, rq.body().size());
    done();
  }

 private:
  static void answer(Exchange& ex, std::size_t body_bytes) {
    if (ex.request().path() == "/stream") {
      ex.set_response_body_stream(std::make_shared<ThreePieces>());
      return;
    }
    ex.response().set_body("read " + std::to_string(body_bytes) + "\n", "text/plain");
  }
  static void pump(Exchange& ex, std::shared_ptr<BodyStream> in, std::size_t got,
                   std::function<void()> done) {
    auto* stream = in.get();
    stream->read([&ex, in = std::move(in), got, done = std::move(done)](BodyPiece p) mutable {
      if (p.failed) {
        ex.answer_error(p.status, "body_failed", "the request body could not be read");
        return done();
      }
      got += p.data.size();
      if (!p.last) return pump(ex, std::move(in), got, std::move(done));
      answer(ex, got);
      done();
    });
  }
};

class SessionHarness {
 public:
  SessionHarness(server::ServerLimits limits, server::ListenerOptions options,
                 std::shared_ptr<server::Dispatcher> dispatcher)
      : pool_(1, "fuzz"),
        server_(pool_, limits, std::move(dispatcher), "fuzz", std::move(options)) {}

  // Writes `bytes` in pieces of `piece` bytes, then EOF; returns what the session wrote.
  std::string run(std::string_view bytes, std::size_t piece) {
    int fds[2];
    check(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "socketpair");
    const int client = fds[0];
    ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
    auto& io = pool_.context(0);
    server::Session::Socket socket(io);
    boost::system::error_code ec;
    // A unix socket in a TCP socket object: the session's reads and writes are plain
    // read/write; its TCP options (TCP_NODELAY) and peer address fail and are ignored.
    socket.assign(boost::asio::ip::tcp::v4(), fds[1], ec);
    check(!ec, "assign");
    std::make_shared<server::Session>(server_, 0, std::move(socket))->start();
    std::string out;
    std::size_t at = 0;
    while (at < bytes.size()) {
      const std::size_t n = std::min(piece, bytes.size() - at);
      const auto w = ::send(client, bytes.data() + at, n, MSG_NOSIGNAL);
      if (w > 0) at += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN) break;  // the session closed its end
      io.poll();
      io.restart();
      drain(client, out);
      if (server_.connections() == 0) break;
    }
    ::shutdown(client, SHUT_WR);
    // The session must end after EOF: a bounded number of turns, each making progress.
    for (int turn = 0; server_.connections() > 0; ++turn) {
      check(turn < 100000, "the session did not close after the client's EOF");
      io.poll();
      io.restart();
      drain(client, out);
    }
    io.poll();
    io.restart();
    drain(client, out);
    ::close(client);
    return out;
  }

 private:
  static void drain(int fd, std::string& out) {
    char buf[16384];
    for (;;) {
      const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return;
      out.append(buf, static_cast<std::size_t>(n));
      check(out.size() < (64u << 20), "more than 64 MiB of answers");
    }
  }

  server::WorkerPool pool_;
  server::Server server_;
};

}  // namespace sluice::fuzz
