// ServerLimits — what one connection may send and how long it may take.
#pragma once

#include <chrono>
#include <cstddef>

namespace sluice::server {

struct ServerLimits {
  std::size_t max_header_bytes = 16 * 1024;  // beyond: 431
  std::size_t max_headers = 100;             // header fields in a request; beyond: 431 (Envoy's)
  std::size_t max_body_bytes = 1024 * 1024;  // beyond: 413
  // Bodies up to this size are buffered whole (Request::body()); larger ones reach the handler
  // as a stream of pieces of at most this size (Exchange::request_body_stream()).
  std::size_t buffer_body_bytes = 64 * 1024;
  std::chrono::milliseconds header_timeout{10'000};  // first byte to end of headers: 408
  std::chrono::milliseconds body_timeout{30'000};    // reading the body: 408
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive wait for the next request
  // After an answer sent while the client was still sending: how long its input is read and
  // dropped before the connection is closed (nginx's lingering_time).
  std::chrono::milliseconds linger_timeout{5'000};
  std::size_t max_connections = 10'000;  // beyond: accepted and closed at once
};

}  // namespace sluice::server
