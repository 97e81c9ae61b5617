// DrainedReads — reads on a plain TCP socket without the recv that finds nothing (issue 20).
//
// Asio starts every read with a speculative recv. The read that waits for a client's next
// request, and the one that waits for an upstream's answer to a request just written, find
// nothing: two recv returning EAGAIN per proxied request (nginx makes none: after a short read
// it knows the socket is empty and waits for epoll). Here a read that the kernel says emptied
// the socket (TCP_INQ, inq_recv.hpp) tells Asio's reactor to wait for epoll before the next read
// (asio_recv_op.hpp, with the argument why no edge is lost).
//
// A FIN is safe: the kernel counts it in the queue length (inq 1), so the read that takes the
// last data does not declare the socket empty and the next read finds the end. An RST is not:
// data then an RST reads as "data, nothing left", and if epoll reported the RST before or with
// the data, no edge is left to wake the next read, which would wait for its timeout (an upstream
// cut off mid-answer would become a late 504 instead of a prompt 502). Hence `must_probe_`:
// after any read that returned data, the next read first calls recvmsg itself (what Asio's
// speculative recv did), unless a write on the socket succeeded since that read. A successful
// write proves no RST had been received when the read ran: tcp_done() sets SEND_SHUTDOWN for
// good and tcp_sendmsg() then fails. An RST received after the read woke epoll after it, and the
// reactor sees that edge. So the recv is skipped exactly where it was useless (a read after
// our own request or response went out), and a read that follows a read (a long body, a head in
// pieces) costs what it did before.
//
// `must_probe_` is written by the reactor (the operation's perform()) and read by the caller
// without a lock: the socket's io_context must be run by one thread, as each sluice worker's is.
//
// Only for plain TCP sockets whose every read goes through read_some() below (the session's and
// the upstream connection's helpers), and whose writes that succeed at once call wrote().
// A write that goes through Asio's async_write does not count: its send may have run before the
// read.
//
//   reads.enable(socket);                         // once, after connect/accept
//   reads.read_some(socket, buffer, handler);     // every read
//   if (socket.write_some(...) > 0) reads.wrote(); // before the code that reads next runs
#pragma once

#include <boost/asio/post.hpp>
#include <cstddef>
#include <utility>

#include "net/drained_reads/asio_recv_op.hpp"
#include "net/drained_reads/inq_buffer.hpp"
#include "net/drained_reads/inq_recv.hpp"

namespace sluice::net {

class DrainedReads {
 public:
  // Turns TCP_INQ on; without it (not Linux, a unix socket) reads are Asio's own.
  template <class Socket>
  void enable(Socket& socket) {
    enabled_ = enable_tcp_inq(socket.native_handle());
  }
  bool enabled() const { return enabled_; }
  // A write on the socket sent bytes, synchronously, after the last read.
  void wrote() { must_probe_ = false; }

  template <class Socket, class Handler>
  void read_some(Socket& socket, boost::asio::mutable_buffer buffer, Handler&& handler) {
    if (!enabled_) return socket.async_read_some(buffer, std::forward<Handler>(handler));
    if (must_probe_) {
      boost::system::error_code ec;
      std::size_t n = 0;
      const auto result = inq_recv(socket.native_handle(), buffer.data(), buffer.size(), ec, n);
      if (result != InqRecv::kWouldBlock) {
        // Still must_probe_: this read may have taken the data in front of an RST.
        return boost::asio::post(socket.get_executor(), [h = std::forward<Handler>(handler), ec,
                                                         n]() mutable { h(ec, n); });
      }
      // Empty now, and no FIN or RST pending (the recv would have said so): anything later
      // wakes epoll, and the reactor runs the read below or retries it speculatively.
      must_probe_ = false;
    }
    socket.async_read_some(InqBuffer{buffer, &must_probe_}, std::forward<Handler>(handler));
  }

 private:
  bool enabled_ = false;
  bool must_probe_ = true;
};

}  // namespace sluice::net
