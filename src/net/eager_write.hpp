// eager_write — write now when the socket takes it all, asynchronously otherwise.
//
// A response or an upstream request usually fits the socket's send buffer. Writing it with a
// plain non-blocking write_some then saves the asynchronous operation, its posted completion
// and the scheduler round trip (an extra epoll_wait) that Asio's async_write costs even when
// its first attempt succeeds. The socket must be in non-blocking mode (socket.non_blocking(true)).
//
//   eager_write(socket, buffers, [self](error_code ec) { self->on_written(ec); });
//   // `done` may run before eager_write returns
//
// `reads`, when given, learns of a write that sent bytes at once, before `done` runs (the next
// read may then wait for epoll without a recv first: net/drained_reads/drained_reads.hpp).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <utility>

#include "net/drained_reads/drained_reads.hpp"

namespace sluice::net {

template <class Socket, class Buffers, class Done>
void eager_write(Socket& socket, const Buffers& buffers, Done&& done,
                 DrainedReads* reads = nullptr) {
  boost::system::error_code ec;
  std::size_t written = socket.write_some(buffers, ec);
  if (!ec && written > 0 && reads != nullptr) reads->wrote();
  if (!ec && written == boost::asio::buffer_size(buffers)) return done(ec);
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
    ec = {};
    written = 0;
  }
  if (ec) return done(ec);
  boost::beast::buffers_suffix<Buffers> rest(buffers);
  rest.consume(written);
  boost::asio::async_write(socket, rest,
                           [done = std::forward<Done>(done)](boost::system::error_code e,
                                                             std::size_t) mutable { done(e); });
}

}  // namespace sluice::net
