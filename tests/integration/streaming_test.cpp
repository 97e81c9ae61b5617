// Large bodies through the proxy pass with bounded memory: a 1 GiB upload and a 1 GiB download
// leave sluice's peak RSS (VmHWM) far below the body size; chunked bodies both ways arrive
// byte for byte; an upstream dying mid-answer aborts the client's connection, and the gateway
// serves on. The upstreams are raw sockets that count or check every byte.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/raw_client.hpp"
#include "support/raw_upstream.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;
constexpr std::uint64_t kMiB = 1024ull * 1024;

// The byte at offset i of every test body: position-dependent, so a lost, repeated or reordered
// piece shows; each MiB is the first one shifted by its index, so sending 1 GiB is cheap.
char byte_at(std::uint64_t i) {
  return static_cast<char>('a' + ((i % kMiB) * 7 + i / kMiB) % 26);
}

std::string body_of(std::uint64_t size) {
  std::string s(size, '\0');
  for (std::uint64_t i = 0; i < size; ++i)
    s[i] = byte_at(i);
  return s;
}

// Peak resident memory of a process, in KiB.
long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Buffered reads from a socket: lines, exact counts, chunked bodies.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  bool fill() {
    char tmp[64 * 1024];
    const auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  std::string head() {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return {};
    std::string h = buf_.substr(0, end + 4);
    buf_.erase(0, end + 4);
    return h;
  }
  std::string line() {
    std::size_t end;
    while ((end = buf_.find("\r\n")) == std::string::npos)
      if (!fill()) return {};
    std::string l = buf_.substr(0, end);
    buf_.erase(0, end + 2);
    return l;
  }
  // Reads up to n bytes, passing them to `sink`; returns how many arrived before EOF.
  template <class Sink>
  std::uint64_t exactly(std::uint64_t n, Sink&& sink) {
    std::uint64_t got = 0;
    while (got < n) {
      if (buf_.empty() && !fill()) break;
      const auto take = std::min<std::uint64_t>(n - got, buf_.size());
      sink(std::string_view(buf_).substr(0, take), got);
      buf_.erase(0, take);
      got += take;
    }
    return got;
  }
  // A whole chunked body; false when it is malformed or cut short.
  bool chunked(std::string& out) {
    for (;;) {
      const std::string size_line = line();
      if (size_line.empty()) return false;
      const auto size = std::stoull(size_line, nullptr, 16);
      if (size == 0) return line().empty();  // no trailers: the final CRLF
      const auto got = exactly(size, [&](std::string_view piece, std::uint64_t) { out += piece; });
      if (got != size || line() != "") return false;
    }
  }

 private:
  int fd_;
  std::string buf_;
};

std::uint64_t header_number(const std::string& head, const std::string& name) {
  auto pos = head.find(name + ": ");
  if (pos == std::string::npos) return 0;
  return std::stoull(head.substr(pos + name.size() + 2));
}

// Sends byte_at(0..size) from 26 precomputed MiB blocks.
void send_pattern(int fd, std::uint64_t size) {
  static const std::vector<std::string> blocks = [] {
    std::vector<std::string> b;
    for (std::uint64_t k = 0; k < 26; ++k) {
      std::string block(kMiB, '\0');
      for (std::uint64_t j = 0; j < kMiB; ++j)
        block[j] = byte_at(k * kMiB + j);
      b.push_back(std::move(block));
    }
    return b;
  }();
  for (std::uint64_t off = 0; off < size; off += kMiB) {
    const auto& block = blocks[(off / kMiB) % 26];
    write_all(fd, block.substr(0, std::min<std::uint64_t>(kMiB, size - off)));
  }
}

std::string config(int upstream_port, const std::string& extra_limits = "") {
  return "workers: 1\nlimits: { max_body_bytes: 4294967296" + extra_limits +
         " }\nupstreams:\n  backend: { endpoints: [\"127.0.0.1:" + std::to_string(upstream_port) +
         "\"] }\nroutes:\n  - name: static\n    match: { prefix: /static }\n"
         "    handler: { type: respond, status: 200, body: \"static\" }\n"
         "  - name: p\n    handler: { type: proxy, cluster: backend }\n";
}

TEST(Streaming, OneGibUploadPassesWithBoundedMemory) {
  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> intact{true};
  RawUpstream up([&](int fd) {
    Reader r(fd);
    const auto head = r.head();
    if (head.empty()) return;
    const auto length = header_number(head, "Content-Length");
    // Every 4099th byte is checked: enough to catch a lost or repeated piece, cheap for 1 GiB.
    const auto got = r.exactly(length, [&](std::string_view piece, std::uint64_t at) {
      for (std::uint64_t i = (4099 - at % 4099) % 4099; i < piece.size(); i += 4099)
        if (piece[i] != byte_at(at + i)) intact = false;
    });
    received = got;
    const std::string answer = std::to_string(got);
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(answer.size()) +
                      "\r\n\r\n" + answer);
  });
  SluiceProcess gw(config(up.port()));
  const long rss_before = peak_rss_kib(gw.pid());

  const int fd = connect_loopback(gw.port(), 60);
  ASSERT_GE(fd, 0);
  write_all(fd, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(kGiB) +
                    "\r\n\r\n");
  send_pattern(fd, kGiB);
  Reader client(fd);
  const auto head = client.head();
  ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  std::string answer;
  client.exactly(header_number(head, "Content-Length"),
                 [&](std::string_view p, std::uint64_t) { answer += p; });
  ::close(fd);
  EXPECT_EQ(answer, std::to_string(kGiB));
  EXPECT_EQ(received.load(), kGiB);
  EXPECT_TRUE(intact.load());
  const long rss_after = peak_rss_kib(gw.pid());
  EXPECT_LT(rss_after - rss_before, 64 * 1024)
      << "peak RSS grew by " << rss_after - rss_before << " KiB for a 1 GiB upload";
}

TEST(Streaming, OneGibDownloadPassesWithBoundedMemory) {
  RawUpstream up([](int fd) {
    if (read_head(fd).empty()) return;
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kGiB) + "\r\n\r\n");
    send_pattern(fd, kGiB);
  });
  SluiceProcess gw(config(up.port()));
  const long rss_before = peak_rss_kib(gw.pid());

  const int fd = connect_loopback(gw.port(), 60);
  ASSERT_GE(fd, 0);
  write_all(fd, "GET /download HTTP/1.1\r\nHost: t\r\n\r\n");
  Reader client(fd);
  const auto head = client.head();
  ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_EQ(header_number(head, "Content-Length"), kGiB) << head;
  bool intact = true;
  const auto got = client.exactly(kGiB, [&](std::string_view piece, std::uint64_t at) {
    for (std::uint64_t i = (4099 - at % 4099) % 4099; i < piece.size(); i += 4099)
      if (piece[i] != byte_at(at + i)) intact = false;
  });
  EXPECT_EQ(got, kGiB);
  EXPECT_TRUE(intact);
  // The connection is still good for another request.
  write_all(fd, "GET /static HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(client.head().rfind("HTTP/1.1 200", 0), 0u);
  ::close(fd);
  const long rss_after = peak_rss_kib(gw.pid());
  EXPECT_LT(rss_after - rss_before, 64 * 1024)
      << "peak RSS grew by " << rss_after - rss_before << " KiB for a 1 GiB download";
}

// A chunked upload (unknown length) goes upstream chunked, and a chunked answer comes back
// chunked; both byte for byte, with 100-continue on the way in.
TEST(Streaming, ChunkedBodiesBothWaysArriveIntact) {
  const std::string expected = body_of(8 * kMiB + 12'345);
  std::string upstream_got;
  std::string upstream_head;
  std::atomic<bool> upstream_ok{false};
  RawUpstream up([&](int fd) {
    Reader r(fd);
    upstream_head = r.head();
    if (upstream_head.empty()) return;
    upstream_ok = r.chunked(upstream_got);
    // Answer with the same bytes reversed, in chunks of varying size.
    const std::string reversed(upstream_got.rbegin(), upstream_got.rend());
    write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::size_t off = 0, step = 1;
    while (off < reversed.size()) {
      const auto n = std::min(step, reversed.size() - off);
      char size_line[32];
      std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
      write_all(fd, size_line + reversed.substr(off, n) + "\r\n");
      off += n;
      step = step * 3 % 200'003 + 1;
    }
    write_all(fd, "0\r\n\r\n");
  });
  SluiceProcess gw(config(up.port()));
  const int fd = connect_loopback(gw.port(), 60);
  ASSERT_GE(fd, 0);
  write_all(fd,
            "POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            "Expect: 100-continue\r\n\r\n");
  Reader client(fd);
  EXPECT_EQ(client.head().rfind("HTTP/1.1 100", 0), 0u);
  for (std::size_t off = 0; off < expected.size(); off += 70'001) {
    const auto n = std::min<std::size_t>(70'001, expected.size() - off);
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
    write_all(fd, size_line + expected.substr(off, n) + "\r\n");
  }
  write_all(fd, "0\r\n\r\n");
  const auto head = client.head();
  ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  std::string answer;
  EXPECT_TRUE(client.chunked(answer));
  ::close(fd);
  EXPECT_TRUE(upstream_ok.load());
  EXPECT_NE(upstream_head.find("Transfer-Encoding: chunked"), std::string::npos) << upstream_head;
  EXPECT_EQ(upstream_head.find("Expect:"), std::string::npos) << upstream_head;
  EXPECT_TRUE(upstream_got == expected) << "upstream got " << upstream_got.size() << " bytes";
  EXPECT_TRUE(answer == std::string(expected.rbegin(), expected.rend()))
      << "client got " << answer.size() << " bytes";
}

// The upstream dies after 3 MiB of a 10 MiB answer: the client's connection is aborted (it can
// tell the body is incomplete), and the gateway answers the next request.
TEST(Streaming, UpstreamDyingMidAnswerAbortsTheClientConnection) {
  RawUpstream up([](int fd) {
    if (read_head(fd).empty()) return;
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(10 * kMiB) + "\r\n\r\n");
    send_pattern(fd, 3 * kMiB);
    ::shutdown(fd, SHUT_RDWR);
  });
  SluiceProcess gw(config(up.port()));
  const int fd = connect_loopback(gw.port(), 60);
  ASSERT_GE(fd, 0);
  write_all(fd, "GET /dies HTTP/1.1\r\nHost: t\r\n\r\n");
  Reader client(fd);
  const auto head = client.head();
  ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  const auto got = client.exactly(10 * kMiB, [](std::string_view, std::uint64_t) {});
  EXPECT_GE(got, 64 * 1024u);
  EXPECT_LT(got, 10 * kMiB);
  ::close(fd);

  RawClient next(gw.port());
  ASSERT_TRUE(next.send("GET /static HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(status_codes(next.read_responses(1)), std::vector<int>{200});
}

// Reloads `gw` with config(port) whose cluster has another connect_timeout_ms (so the reload
// builds a new cluster and a new proxy route, and drops the old ones once nothing holds them)
// and whose /static answers `body`; true once a request on the (single) worker got the new
// config, which also lets that worker's hold on the old config go.
bool reload_replacing_the_cluster(SluiceProcess& gw, int port, const std::string& body) {
  std::string next = config(port);
  const std::string endpoint = "\"127.0.0.1:" + std::to_string(port) + "\"]";
  next.replace(next.find(endpoint), endpoint.size(), endpoint + ", connect_timeout_ms: 1500");
  next.replace(next.find("body: \"static\""), 14, "body: \"" + body + "\"");
  gw.rewrite_config(next);
  ::kill(gw.pid(), SIGHUP);
  for (int i = 0; i < 300; ++i) {
    RawClient c(gw.port());
    if (c.send("GET /static HTTP/1.1\r\nHost: t\r\n\r\n") &&
        c.read_responses(1).find("\r\n\r\n" + body) != std::string::npos)
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Reloads in the middle of a proxied call (docs/ARCHITECTURE.md, "Chains and snapshots"). A call
// that is still trying borrows its route from the handler in the config snapshot its request
// holds, so the reload's new route and cluster wait for it; the answer it gets after the reload
// reaches the client whole.
TEST(Streaming, ACallWaitingOnItsUpstreamOutlivesAReloadThatReplacesTheRoute) {
  std::atomic<bool> asked{false}, go{false};
  RawUpstream up([&](int fd) {
    if (read_head(fd).empty()) return;
    asked = true;
    while (!go)
      std::this_thread::sleep_for(5ms);
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlater");
  });
  // The upstream's thread waits for `go`: set on every way out, or ~RawUpstream would wait.
  struct Release {
    std::atomic<bool>& go;
    ~Release() { go = true; }
  } release{go};
  SluiceProcess gw(config(up.port()));
  RawClient client(gw.port());
  ASSERT_TRUE(client.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  for (int i = 0; i < 500 && !asked; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(asked);
  ASSERT_TRUE(reload_replacing_the_cluster(gw, up.port(), "static2")) << gw.log();
  go = true;
  const auto answer = client.read_responses(1);
  EXPECT_EQ(status_codes(answer), std::vector<int>{200}) << answer;
  EXPECT_NE(answer.find("\r\n\r\nlater"), std::string::npos) << answer;
}

// A streamed answer outlives its request's hold on the config (the session writes it after the
// exchange is done), so from its head on the call owns its route. Here the reload replaces route
// and cluster when the first MiB of 4 is through and a request lets the worker drop the old
// config; the other 3 MiB still arrive, byte for byte. (Read from a freed route or cluster, the
// ASan build reports it.)
TEST(Streaming, AnAnswerStreamedAcrossAReloadThatReplacesTheRouteArrivesWhole) {
  const std::string body = body_of(4 * kMiB);
  std::atomic<bool> half{false}, go{false};
  RawUpstream up([&](int fd) {
    if (read_head(fd).empty()) return;
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                      body.substr(0, kMiB));
    half = true;
    while (!go)
      std::this_thread::sleep_for(5ms);
    write_all(fd, body.substr(kMiB));
  });
  // The upstream's thread waits for `go`: set on every way out, or ~RawUpstream would wait.
  struct Release {
    std::atomic<bool>& go;
    ~Release() { go = true; }
  } release{go};
  SluiceProcess gw(config(up.port()));
  const int fd = connect_loopback(gw.port(), 60);
  ASSERT_GE(fd, 0);
  write_all(fd, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
  Reader client(fd);
  const auto head = client.head();
  ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  std::string got;
  const auto sink = [&](std::string_view piece, std::uint64_t) { got += piece; };
  ASSERT_EQ(client.exactly(kMiB, sink), kMiB);
  // The upstream sets `half` after its write returned; the client can read the MiB before that
  // thread runs again (a loaded machine), so wait for the flag rather than expect it.
  for (int i = 0; i < 500 && !half; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(half);
  ASSERT_TRUE(reload_replacing_the_cluster(gw, up.port(), "static2")) << gw.log();
  go = true;
  EXPECT_EQ(client.exactly(3 * kMiB, sink), 3 * kMiB);
  EXPECT_TRUE(got == body) << "the streamed answer differs from the upstream's";
  ::close(fd);
  RawClient next(gw.port());
  ASSERT_TRUE(next.send("GET /p HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(status_codes(next.read_responses(1)).size(), 1u) << gw.log();
}

// A large body sent to a handler that does not read it: the answer comes, then the connection
// closes (the unread rest of the body cannot be parsed as a next request).
TEST(Streaming, UnreadStreamedBodyClosesTheConnectionAfterTheAnswer) {
  RawUpstream up([](int) {});
  SluiceProcess gw(config(up.port()));
  const int fd = connect_loopback(gw.port(), 60);
  ASSERT_GE(fd, 0);
  write_all(fd, "POST /static HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(4 * kMiB) +
                    "\r\n\r\n" + body_of(256 * 1024));
  Reader client(fd);
  const auto head = client.head();
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("Connection: close"), std::string::npos) << head;
  ::close(fd);
}

}  // namespace
}  // namespace sluice::testing
