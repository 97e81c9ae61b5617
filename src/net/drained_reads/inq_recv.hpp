// inq_recv — one non-blocking recvmsg that also says whether the socket is now empty.
//
// With TCP_INQ on (Linux >= 4.18), every successful recvmsg carries a TCP_CM_INQ control message:
// the bytes still queued after this read (tcp_inq_hint()). The kernel reports 1, not 0, once a
// FIN has been received (SOCK_DONE) so that user space keeps reading. It does NOT report an RST:
// tcp_reset() sets sk_err and tcp_done() moves the socket to CLOSE, but neither sets SOCK_DONE,
// so data followed by an RST reads as "data, then inq 0" (checked on this machine's kernel,
// 6.18). drained_reads.hpp covers that case; see there.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/error.hpp>
#include <cerrno>
#include <cstddef>
#include <cstring>

#ifndef TCP_INQ
#define TCP_INQ 36
#endif
#ifndef TCP_CM_INQ
#define TCP_CM_INQ TCP_INQ
#endif

namespace sluice::net {

enum class InqRecv : unsigned char {
  kWouldBlock,  // nothing to read now
  kData,        // bytes read; more may be queued (or a FIN: the next read sees it)
  kDrained,     // bytes read and nothing else queued, not even a FIN (an RST may be: see above)
  kEnd,         // end of stream (ec = eof) or an error (ec set)
};

// Asks the kernel to attach the queue length to each read. False where it cannot (not Linux
// >= 4.18, not TCP): the socket is then read the ordinary way.
inline bool enable_tcp_inq(int fd) {
  int one = 1;
  return ::setsockopt(fd, SOL_TCP, TCP_INQ, &one, sizeof one) == 0;
}

inline InqRecv inq_recv(int fd, void* data, std::size_t size, boost::system::error_code& ec,
                        std::size_t& bytes) {
  bytes = 0;
  ec = {};
  if (size == 0) return InqRecv::kData;  // as Asio: an empty read completes at once
  for (;;) {
    iovec iov{data, size};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return InqRecv::kWouldBlock;
      ec.assign(errno, boost::asio::error::get_system_category());
      return InqRecv::kEnd;
    }
    if (n == 0) {
      ec = boost::asio::error::eof;
      return InqRecv::kEnd;
    }
    bytes = static_cast<std::size_t>(n);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ) {
        int inq = 0;
        std::memcpy(&inq, CMSG_DATA(c), sizeof inq);
        return inq == 0 ? InqRecv::kDrained : InqRecv::kData;
      }
    }
    return InqRecv::kData;  // no hint (TCP_INQ off): assume more may come
  }
}

}  // namespace sluice::net
