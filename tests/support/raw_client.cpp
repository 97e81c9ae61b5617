#include "support/raw_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace sluice::testing {

RawClient::RawClient(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("connect failed");
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

void RawClient::reset() {
  linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd_);
  fd_ = -1;
}

bool RawClient::send_and_close_write(const std::string& bytes) {
  return send(bytes) && ::shutdown(fd_, SHUT_WR) == 0;
}

bool RawClient::send(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

namespace {
// Number of complete responses at the start of `s` (Content-Length framing only).
int complete_responses(const std::string& s) {
  int count = 0;
  std::size_t pos = 0;
  while (true) {
    auto end = s.find("\r\n\r\n", pos);
    if (end == std::string::npos) return count;
    std::size_t length = 0;
    auto head = s.substr(pos, end - pos);
    for (auto& c : head)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto cl = head.find("content-length:");
    if (cl != std::string::npos) length = std::stoul(head.substr(cl + 15));
    if (s.size() < end + 4 + length) return count;
    pos = end + 4 + length;
    ++count;
  }
}
}  // namespace

std::string RawClient::read_responses(int n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (complete_responses(pending_) < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    auto r = ::recv(fd_, buf, sizeof buf, 0);
    if (r <= 0) break;
    pending_.append(buf, static_cast<std::size_t>(r));
  }
  return pending_;
}

bool RawClient::closed_by_peer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    auto r = ::recv(fd_, buf, sizeof buf, 0);
    if (r == 0) return true;
    if (r < 0) return true;  // reset
    pending_.append(buf, static_cast<std::size_t>(r));
  }
}

std::vector<int> status_codes(const std::string& stream) {
  std::vector<int> codes;
  std::size_t pos = 0;
  while ((pos = stream.find("HTTP/1.", pos)) != std::string::npos) {
    if (pos + 12 <= stream.size()) codes.push_back(std::stoi(stream.substr(pos + 9, 3)));
    pos += 12;
  }
  return codes;
}

}  // namespace sluice::testing
