// InqBuffer — the marker buffer type that selects the TCP_INQ receive operation
// (asio_recv_op.hpp): one mutable buffer, and the flag of the socket's DrainedReads that a read
// of data sets (the next read must look at the kernel unless a write succeeds first).
#pragma once

#include <boost/asio/buffer.hpp>

namespace sluice::net {

struct InqBuffer {
  boost::asio::mutable_buffer buffer;
  bool* must_probe;
  // A MutableBufferSequence of one buffer.
  const boost::asio::mutable_buffer* begin() const { return &buffer; }
  const boost::asio::mutable_buffer* end() const { return &buffer + 1; }
};

}  // namespace sluice::net
