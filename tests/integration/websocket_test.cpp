// WebSocket handshakes through the proxy: with `websocket: true` on the route, the Upgrade goes
// upstream and, after the upstream's 101, bytes flow both ways until a side closes; without it,
// Upgrade is a hop-by-hop header like any other and is not forwarded.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "support/raw_client.hpp"
#include "support/raw_upstream.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

// An upstream that accepts a WebSocket handshake and then echoes bytes upper-cased (no framing:
// the tunnel carries whatever bytes the two sides exchange).
class EchoUpgradeUpstream {
 public:
  EchoUpgradeUpstream()
      : raw_([this](int fd) {
          std::string head = read_head(fd);
          {
            std::lock_guard lock(mutex_);
            head_ = head;
          }
          if (head.find("Upgrade: websocket") == std::string::npos) {
            write_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 10\r\n\r\nno upgrade");
            return;
          }
          write_all(fd,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n");
          char buf[4096];
          for (;;) {
            const auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            for (ssize_t i = 0; i < n; ++i)
              buf[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(buf[i])));
            write_all(fd, std::string(buf, static_cast<std::size_t>(n)));
          }
          closed_after_client_ = true;
        }) {}
  int port() const { return raw_.port(); }
  std::string head() {
    std::lock_guard lock(mutex_);
    return head_;
  }
  std::atomic<bool> closed_after_client_{false};

 private:
  std::mutex mutex_;
  std::string head_;
  RawUpstream raw_;
};

std::string config(int port, bool websocket, const std::string& extra = "") {
  return "workers: 1\nupstreams:\n  backend: { endpoints: [\"127.0.0.1:" + std::to_string(port) +
         "\"] }\nroutes:\n  - name: ws\n    handler: { type: proxy, cluster: backend" +
         (websocket ? ", websocket: true" : "") + extra + " }\n";
}

// Reads until `want` bytes arrived (or EOF / timeout).
std::string read_exactly(int fd, std::size_t want) {
  std::string out;
  char buf[4096];
  while (out.size() < want) {
    const auto n = ::recv(fd, buf, std::min(sizeof buf, want - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

const char kHandshake[] =
    "GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// Reads the response head of the handshake, byte by byte (the tunnel's bytes follow it).
std::string read_handshake_answer(int fd) {
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos) {
    char c;
    if (::recv(fd, &c, 1, 0) != 1) break;
    head += c;
  }
  return head;
}

TEST(WebSocket, HandshakeThenBytesBothWaysUntilTheClientCloses) {
  EchoUpgradeUpstream up;
  SluiceProcess gw(config(up.port(), true));
  const int fd = connect_loopback(gw.port(), 10);
  ASSERT_GE(fd, 0);
  write_all(fd, kHandshake);
  const std::string head = read_handshake_answer(fd);
  EXPECT_EQ(head.rfind("HTTP/1.1 101", 0), 0u) << head;
  EXPECT_NE(head.find("Upgrade: websocket"), std::string::npos) << head;
  EXPECT_NE(head.find("Connection: Upgrade"), std::string::npos) << head;
  EXPECT_NE(head.find("Sec-WebSocket-Accept: test"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  // The upstream saw the handshake headers that are hop-by-hop otherwise.
  EXPECT_NE(up.head().find("Connection: Upgrade"), std::string::npos) << up.head();
  EXPECT_NE(up.head().find("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), std::string::npos);

  write_all(fd, "hello");
  EXPECT_EQ(read_exactly(fd, 5), "HELLO");
  const std::string big(200'000, 'x');  // more than one piece each way
  write_all(fd, big);
  EXPECT_EQ(read_exactly(fd, big.size()), std::string(big.size(), 'X'));

  ::shutdown(fd, SHUT_WR);  // the client ends its side: the upstream sees EOF, then sluice closes
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
  ::close(fd);
  for (int i = 0; i < 200 && !up.closed_after_client_; ++i)
    ::usleep(10'000);
  EXPECT_TRUE(up.closed_after_client_.load());

  // The gateway goes on serving plain requests.
  RawClient next(gw.port());
  ASSERT_TRUE(next.send("GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(status_codes(next.read_responses(1)), std::vector<int>{400});  // the upstream's
}

TEST(WebSocket, AnIdleTunnelIsClosedCleanlyAfterTheIdleTimeout) {
  EchoUpgradeUpstream up;
  SluiceProcess gw(config(up.port(), true, ", websocket_idle_timeout_ms: 600"));
  const int fd = connect_loopback(gw.port(), 10);
  ASSERT_GE(fd, 0);
  write_all(fd, kHandshake);
  EXPECT_EQ(read_handshake_answer(fd).rfind("HTTP/1.1 101", 0), 0u);
  for (int i = 0; i < 3; ++i) {  // traffic every 200 ms keeps the 600 ms idle timeout away
    write_all(fd, "ping");
    EXPECT_EQ(read_exactly(fd, 4), "PING");
    ::usleep(200'000);
  }
  const auto quiet = std::chrono::steady_clock::now();
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << "a clean end (FIN), not a reset";
  const auto waited = std::chrono::steady_clock::now() - quiet;
  EXPECT_GE(waited, std::chrono::milliseconds(50));
  EXPECT_LT(waited, std::chrono::seconds(5));
  ::close(fd);
  for (int i = 0; i < 200 && !up.closed_after_client_; ++i)
    ::usleep(10'000);
  EXPECT_TRUE(up.closed_after_client_.load()) << "the upstream connection was closed too";
}

TEST(WebSocket, WithoutTheRouteOptionUpgradeIsNotForwarded) {
  EchoUpgradeUpstream up;
  SluiceProcess gw(config(up.port(), false));
  RawClient client(gw.port());
  ASSERT_TRUE(client.send(kHandshake));
  EXPECT_EQ(status_codes(client.read_responses(1)), std::vector<int>{400});
  EXPECT_EQ(up.head().find("Upgrade:"), std::string::npos) << up.head();
}

// A tunnel outlives its request's hold on the config (the session pumps it after the exchange is
// done), so from the 101 on the call owns its route (UpstreamCall's constructor; it reads the
// route's idle timeout on every piece). Here a reload replaces the route and the cluster (another
// connect_timeout_ms) mid-tunnel, a request lets the worker drop the old config, and bytes still
// flow both ways. (Read from a freed route, the ASan build reports it.)
TEST(WebSocket, ATunnelOutlivesAReloadThatReplacesItsRoute) {
  EchoUpgradeUpstream up;
  const auto with_static = [&](const std::string& cluster_extra, const std::string& body) {
    return "workers: 1\nupstreams:\n  backend: { endpoints: [\"127.0.0.1:" +
           std::to_string(up.port()) + "\"]" + cluster_extra +
           " }\nroutes:\n  - name: static\n    match: { exact: /static }\n"
           "    handler: { type: respond, status: 200, body: \"" +
           body +
           "\" }\n  - name: ws\n    handler: { type: proxy, cluster: backend, websocket: true "
           "}\n";
  };
  SluiceProcess gw(with_static("", "v1"));
  const int fd = connect_loopback(gw.port(), 10);
  ASSERT_GE(fd, 0);
  write_all(fd, kHandshake);
  const std::string head = read_handshake_answer(fd);
  ASSERT_EQ(head.rfind("HTTP/1.1 101", 0), 0u) << head;
  write_all(fd, "hello");
  ASSERT_EQ(read_exactly(fd, 5), "HELLO");

  gw.rewrite_config(with_static(", connect_timeout_ms: 1500", "v2"));
  ::kill(gw.pid(), SIGHUP);
  bool reloaded = false;
  for (int i = 0; i < 300 && !reloaded; ++i) {
    RawClient c(gw.port());
    reloaded = c.send("GET /static HTTP/1.1\r\nHost: t\r\n\r\n") &&
               c.read_responses(1).find("\r\n\r\nv2") != std::string::npos;
    if (!reloaded) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(reloaded) << gw.log();

  write_all(fd, "again");
  EXPECT_EQ(read_exactly(fd, 5), "AGAIN");
  const std::string big(200'000, 'x');  // more than one piece each way
  write_all(fd, big);
  EXPECT_TRUE(read_exactly(fd, big.size()) == std::string(big.size(), 'X'))
      << "the tunnel lost or changed bytes after the reload";
  ::shutdown(fd, SHUT_WR);
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
  ::close(fd);
}

}  // namespace
}  // namespace sluice::testing
