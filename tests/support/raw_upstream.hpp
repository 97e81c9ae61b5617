// Test upstreams on raw sockets: a loopback listener that hands each accepted connection to a
// function on its own thread, for upstreams that misbehave on purpose or count bytes exactly.
//
//   RawUpstream up([](int fd) { read_head(fd); write_all(fd, "HTTP/1.1 200 OK\r\n..."); });
//   ... "endpoints: [127.0.0.1:" + std::to_string(up.port()) + "]" ...
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testing {

// A listener whose every accepted connection is handed to `serve(fd)` on its own thread.
class RawUpstream {
 public:
  explicit RawUpstream(std::function<void(int)> serve) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        if (stopping_) {
          ::close(c);
          return;
        }
        accepted_++;
        workers_.emplace_back([this, c] {
          serve_(c);
          ::close(c);
        });
      }
    });
  }
  ~RawUpstream() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (auto& w : workers_)
      w.join();
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }
  std::atomic<bool>& stopping() { return stopping_; }

 private:
  std::function<void(int)> serve_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

// Reads one request head (until the blank line); returns it, empty on EOF.
inline std::string read_head(int fd) {
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (::read(fd, &c, 1) != 1) return {};
    head += c;
  }
  return head;
}

inline void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

// A RawUpstream's serve function: reads one request head, writes `answer`, then closes both
// directions at once (the answer's last bytes and the FIN leave together).
inline std::function<void(int)> answer_then_close(std::string answer) {
  return [answer = std::move(answer)](int fd) {
    if (read_head(fd).empty()) return;
    write_all(fd, answer);
    ::shutdown(fd, SHUT_RDWR);
  };
}

// A blocking client socket connected to 127.0.0.1:port whose reads time out after
// `recv_timeout_s`; -1 when the connect fails.
inline int connect_loopback(int port, int recv_timeout_s) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{recv_timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

}  // namespace sluice::testing
