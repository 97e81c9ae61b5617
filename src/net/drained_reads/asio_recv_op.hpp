// The Asio receive operation for an InqBuffer (drained_reads.hpp): the read that can tell Asio's
// epoll reactor "the socket is empty now, wait for epoll before the next read".
//
// Asio 1.81 (1.26) keeps a `try_speculative_` flag per descriptor and operation type; while it
// is set, a new read starts with a recv before waiting. Its receive operation clears it only at
// end of stream, so the read that waits for a client's next request, or for the answer to a
// request just written, starts with a recv that returns EAGAIN. This specialization of
// `reactive_socket_recv_op_base` reads with recvmsg and TCP_CM_INQ (inq_recv.hpp) and returns
// `done_and_exhausted` when the kernel says nothing is left, not even a FIN, so the reactor
// clears the flag and the next read waits for epoll without a system call.
//
// Why no readiness can be lost between this read and the flag being cleared (Asio 1.26,
// detail/impl/epoll_reactor.ipp; sockets are registered
// EPOLLIN|EPOLLERR|EPOLLHUP|EPOLLPRI|EPOLLET):
// - `perform()` runs either in `start_op` (the speculative attempt) or in
//   `descriptor_state::perform_io`, both holding the descriptor's mutex, and the flag is cleared
//   under that same hold. The flag is set again only by `perform_io` for an event that epoll
//   reported, also under the mutex.
// - The kernel updates the state a read looks at (rcv_nxt for data, SOCK_DONE for a FIN) before
//   it wakes the socket's waiters (sk_data_ready, sk_state_change), and the wake-up puts the
//   edge-triggered epoll item on the ready list. So data or a FIN that our recvmsg's inq does not
//   count is woken after it; epoll reports that edge in a later epoll_wait, whose perform_io
//   takes the mutex after us: it either runs the queued read or sets the flag again.
// - EPOLLERR/EPOLLHUP are not level-triggered here: with EPOLLET they are reported once per
//   wake-up, like EPOLLIN (perform_io treats them as readiness for every queue).
// The hole: an RST. Data followed by an RST reads as "data, inq 0", and if the RST's wake-up was
// reported before or with the data's (one epoll_wait saw both), no edge is left. The caller
// covers it (drained_reads.hpp: a read is skipped only after a successful write since the last
// read, which an RST makes impossible).
#pragma once

#include <boost/asio/error.hpp>
#include <boost/asio/socket_base.hpp>
// After error.hpp and socket_base.hpp, which it uses without including.
#include <boost/asio/detail/reactive_socket_recv_op.hpp>

#include "net/drained_reads/inq_buffer.hpp"
#include "net/drained_reads/inq_recv.hpp"

namespace boost::asio::detail {

template <>
class reactive_socket_recv_op_base<sluice::net::InqBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type /*state*/,
                               const sluice::net::InqBuffer& buffers,
                               socket_base::message_flags /*flags*/, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        buffers_(buffers) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const auto result =
        sluice::net::inq_recv(o->socket_, o->buffers_.buffer.data(), o->buffers_.buffer.size(),
                              o->ec_, o->bytes_transferred_);
    switch (result) {
      case sluice::net::InqRecv::kWouldBlock:
        return not_done;
      case sluice::net::InqRecv::kData:
        *o->buffers_.must_probe = true;
        return done;
      case sluice::net::InqRecv::kDrained:
        *o->buffers_.must_probe = true;
        return done_and_exhausted;
      case sluice::net::InqRecv::kEnd:
        break;
    }
    return done_and_exhausted;  // end of stream or an error: as Asio's own operation
  }

 private:
  socket_type socket_;
  sluice::net::InqBuffer buffers_;
};

}  // namespace boost::asio::detail
