// RawClient — a blocking TCP client for tests that must send exact bytes (pipelining,
// malformed requests, slow clients) and read exactly what the server answers.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace sluice::testing {

class RawClient {
 public:
  explicit RawClient(int port);
  ~RawClient();
  bool send(const std::string& bytes);
  // Sends and then half-closes (shutdown SHUT_WR): the bytes and the FIN leave together.
  bool send_and_close_write(const std::string& bytes);
  // Closes with an RST (SO_LINGER 0) instead of a FIN.
  void reset();
  // Reads until `n` complete HTTP responses arrived (Content-Length framed), the peer closed,
  // or the timeout passed. Returns everything read.
  std::string read_responses(int n, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // True when the server closed the connection (read returns 0) within the timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  int fd_ = -1;
  std::string pending_;
};

// Splits a byte stream of responses into status codes, e.g. {200, 200, 404}.
std::vector<int> status_codes(const std::string& stream);

}  // namespace sluice::testing
