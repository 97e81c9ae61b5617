// DrainedReads on real loopback sockets: a read that the kernel says emptied the socket makes
// the next read wait for epoll without a recv, and neither a FIN nor an RST that came with the
// last data may leave that next read waiting for ever (net/drained_reads/drained_reads.hpp).
// Each test runs the io_context for at most two seconds: a read left waiting fails the test.
#include "net/drained_reads/drained_reads.hpp"

#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

struct Pair {
  asio::io_context io;
  tcp::socket ours{io};
  int peer = -1;
  sluice::net::DrainedReads reads;
  std::string got;
  std::optional<error_code> end;
  char buf[64];

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::socket client(io);
    client.connect(acceptor.local_endpoint());
    acceptor.accept(ours);
    peer = client.release();
    ours.non_blocking(true);
    reads.enable(ours);
  }
  ~Pair() {
    if (peer >= 0) ::close(peer);
  }
  void peer_send(const std::string& s) {
    ASSERT_EQ(::write(peer, s.data(), s.size()), ssize_t(s.size()));
  }
  void peer_fin() { ::shutdown(peer, SHUT_WR); }
  void peer_reset() {
    linger l{1, 0};
    ::setsockopt(peer, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(peer);
    peer = -1;
  }
  // Our side writes a byte; true when the kernel took it (then the next read may skip the recv).
  bool write_byte() {
    error_code ec;
    const auto n = ours.write_some(asio::buffer("w", 1), ec);
    if (!ec && n > 0) reads.wrote();
    return !ec && n > 0;
  }
  // Reads until the end of the stream or an error, writing a byte after each piece when
  // `write_between` (so that the next read waits for epoll without a recv first).
  void read_to_end(bool write_between) {
    reads.read_some(ours, asio::buffer(buf), [this, write_between](error_code ec, std::size_t n) {
      if (ec) {
        end = ec;
        return;
      }
      got.append(buf, n);
      if (write_between) write_byte();
      read_to_end(write_between);
    });
  }
  void run() { io.run_for(2s); }
};

// Counts this thread's entries into recvfrom and recvmsg, through the kernel's syscall
// tracepoints (perf_event_open). Not available without tracefs or permission: the test skips.
class RecvCount {
 public:
  RecvCount() {
    for (const char* name : {"sys_enter_recvfrom", "sys_enter_recvmsg"}) {
      std::ifstream id_file(std::string("/sys/kernel/tracing/events/syscalls/") + name + "/id");
      unsigned long long id = 0;
      if (!(id_file >> id)) return;
      perf_event_attr attr{};
      attr.type = PERF_TYPE_TRACEPOINT;
      attr.size = sizeof attr;
      attr.config = id;
      const long fd = ::syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
      if (fd < 0) return;
      fds_.push_back(static_cast<int>(fd));
    }
  }
  ~RecvCount() {
    for (int fd : fds_)
      ::close(fd);
  }
  bool available() const { return fds_.size() == 2; }
  unsigned long long now() const {
    unsigned long long total = 0;
    for (int fd : fds_) {
      unsigned long long n = 0;
      if (::read(fd, &n, sizeof n) == sizeof n) total += n;
    }
    return total;
  }

 private:
  std::vector<int> fds_;
};

// Lets loopback deliver what the peer sent (data, FIN, RST) before our side looks.
void settle() {
  std::this_thread::sleep_for(50ms);
}

TEST(DrainedReads, TcpInqIsAvailable) {
  Pair p;
  EXPECT_TRUE(p.reads.enabled())
      << "TCP_INQ (Linux >= 4.18): without it the tests below prove nothing";
}

// A read waits (after a write, so without a recv); the peer sends `data` and then ends the
// stream with `end` (a FIN or an RST); both arrive before our side looks. Returns how the reads
// ended, if they did within two seconds; `write_between`: a byte is written after each piece.
std::optional<error_code> data_then_end(bool write_between, void (Pair::*end)()) {
  Pair p;
  EXPECT_TRUE(p.write_byte());
  p.read_to_end(write_between);
  p.io.poll();
  p.peer_send("partial");
  (p.*end)();
  settle();
  p.run();
  EXPECT_EQ(p.got, "partial");
  return p.end;
}

// The read after the last data skips the recv when a write went out in between, so it must know
// that the FIN is queued (inq 1), or it waits for ever.
TEST(DrainedReads, FinWithTheLastDataEndsTheNextReadAfterAWrite) {
  const auto end = data_then_end(true, &Pair::peer_fin);
  ASSERT_TRUE(end.has_value()) << "the read after the last data waited for an edge that had passed";
  EXPECT_EQ(*end, asio::error::eof);
}

TEST(DrainedReads, FinWithTheLastDataEndsTheNextReadWithoutAWrite) {
  const auto end = data_then_end(false, &Pair::peer_fin);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(*end, asio::error::eof);
}

// Data then an RST: the kernel reports "data, nothing left" (an RST is not counted in TCP_INQ).
// The next read must still look at the socket and see the reset.
TEST(DrainedReads, ResetAfterTheLastDataEndsTheNextRead) {
  const auto end = data_then_end(false, &Pair::peer_reset);
  ASSERT_TRUE(end.has_value()) << "the read after data + RST waited for an edge that had passed";
  EXPECT_EQ(*end, asio::error::connection_reset);
}

// ... and a write after that read fails (the reset is known), so it does not let the next read
// skip the recv either.
TEST(DrainedReads, ResetAfterTheLastDataEndsTheNextReadAfterAFailedWrite) {
  const auto end = data_then_end(true, &Pair::peer_reset);
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(*end == asio::error::connection_reset || *end == asio::error::eof) << end->message();
}

// A read that skipped the recv (socket emptied, then a write) still gets what comes later:
// data, then data, then an RST, each arriving while it waits.
TEST(DrainedReads, AWaitingReadGetsLaterDataAndALaterReset) {
  Pair p;
  ASSERT_TRUE(p.write_byte());
  p.read_to_end(true);
  p.io.poll();
  p.peer_send("one");
  p.io.run_for(200ms);
  EXPECT_EQ(p.got, "one");
  p.peer_send("two");
  p.io.run_for(200ms);
  EXPECT_EQ(p.got, "onetwo");
  EXPECT_FALSE(p.end.has_value());
  p.peer_reset();
  p.run();
  ASSERT_TRUE(p.end.has_value()) << "a reset while the read waited was not seen";
}

// Reads one byte the peer sent after our write: the socket is empty after it (inq 0).
void read_first_byte(Pair& p) {
  ASSERT_TRUE(p.write_byte());
  bool got_one = false;
  p.reads.read_some(p.ours, asio::buffer(p.buf),
                    [&](error_code ec, std::size_t n) { got_one = !ec && n == 1; });
  p.peer_send("a");
  p.io.run_for(1s);
  ASSERT_TRUE(got_one);
  p.io.restart();
}

// The point of it all: after a read that emptied the socket and a write, the next read makes no
// recv until data comes, then exactly one. Without the write, it looks first (one recv).
TEST(DrainedReads, TheReadAfterAWriteMakesNoRecvUntilDataComes) {
  RecvCount count;
  if (!count.available()) GTEST_SKIP() << "no syscall tracepoints here";
  Pair p;
  read_first_byte(p);
  ASSERT_TRUE(p.write_byte());  // the socket was emptied by that read; now a write went out

  const auto before = count.now();
  p.read_to_end(true);
  p.io.poll();
  EXPECT_EQ(count.now() - before, 0u) << "the read after a write still made a recv";
  p.peer_send("b");
  p.io.run_one_for(1s);
  EXPECT_EQ(p.got, "b");
  EXPECT_EQ(count.now() - before, 1u) << "one recvmsg for the data, none before it";
}

// Without a write after a read, the next read looks at the socket first (an RST may be hidden).
TEST(DrainedReads, TheReadAfterAReadMakesARecvFirst) {
  RecvCount count;
  if (!count.available()) GTEST_SKIP() << "no syscall tracepoints here";
  Pair p;
  read_first_byte(p);
  const auto before = count.now();
  p.read_to_end(false);
  EXPECT_EQ(count.now() - before, 1u) << "a read after a read must look at the socket";
}

// Pieces larger than the buffer: every read but the last finds more queued (inq > 0).
TEST(DrainedReads, ALongStreamIsReadWholeThenTheEnd) {
  Pair p;
  const std::string body(100000, 'b');
  std::thread sender([&] {
    for (std::size_t i = 0; i < body.size(); i += 1000) {
      ASSERT_EQ(::write(p.peer, body.data() + i, 1000), 1000);
      if (i % 20000 == 0) std::this_thread::sleep_for(5ms);
    }
    p.peer_fin();
  });
  p.read_to_end(false);
  p.io.run_for(5s);
  sender.join();
  EXPECT_EQ(p.got.size(), body.size());
  ASSERT_TRUE(p.end.has_value());
  EXPECT_EQ(*p.end, asio::error::eof);
}

}  // namespace
