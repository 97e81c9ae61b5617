// A loopback port held by a listening socket for the test's lifetime, for the tests of what a
// listener does when its port is taken.
//
//   TakenPort taken;
//   EXPECT_EQ(admin.start("127.0.0.1", taken.port()), "cannot listen on ...: Address already in
//   use");
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace sluice::testing {

class TakenPort {
 public:
  TakenPort() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof at;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 ||
        ::listen(fd_, 1) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&at), &len) != 0) {
      if (fd_ >= 0) ::close(fd_);
      throw std::runtime_error("cannot hold a loopback port");
    }
    port_ = ntohs(at.sin_port);
  }
  ~TakenPort() { ::close(fd_); }
  TakenPort(const TakenPort&) = delete;
  TakenPort& operator=(const TakenPort&) = delete;

  unsigned short port() const { return port_; }

 private:
  int fd_;
  unsigned short port_ = 0;
};

}  // namespace sluice::testing
