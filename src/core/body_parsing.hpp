// Reading a message body with a Beast parser whose body is a buffer_body, into a std::string the
// caller owns: the server (request bodies) and the proxy (upstream answers) use it both to
// buffer a small body whole and to cut a large one into bounded pieces.
//
//   auto ec = put_body(parser, read_buffer, piece, 64 * 1024);
//   if (ec == body_status::need_more) ... read from the socket, call again
//   if (ec == body_status::full)      ... `piece` reached the limit: consume it, clear, call again
//   if (ec == body_status::done)      ... the body is complete
#pragma once

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <charconv>
#include <string>
#include <string_view>

namespace sluice::detail {

enum class body_status { done, need_more, full, error };

// Feeds what `input` holds to `parser` (header already complete), appending body bytes to `out`
// until the body is done, the input is used up, or `out` holds `limit` bytes. Bytes go through a
// per-thread scratch area so `out` grows only by what arrived (no zero-filled reserve).
template <bool isRequest, class Allocator>
body_status put_body(
    boost::beast::http::parser<isRequest, boost::beast::http::buffer_body, Allocator>& parser,
    boost::beast::flat_buffer& input, std::string& out, std::size_t limit,
    boost::system::error_code& ec) {
  namespace http = boost::beast::http;
  thread_local char scratch[16 * 1024];
  ec = {};
  while (!parser.is_done()) {
    if (out.size() >= limit) return body_status::full;
    const std::size_t room = std::min(sizeof scratch, limit - out.size());
    auto& body = parser.get().body();
    body.data = scratch;
    body.size = room;
    const std::size_t used = parser.put(input.data(), ec);
    input.consume(used);
    out.append(scratch, room - body.size);
    body.data = nullptr;
    if (ec == http::error::need_buffer) {
      ec = {};
      continue;
    }
    if (ec == http::error::need_more) {
      ec = {};
      return body_status::need_more;
    }
    if (ec) return body_status::error;
    if (input.size() == 0 && !parser.is_done()) return body_status::need_more;
  }
  return body_status::done;
}

// The buffers that write one piece of a body: as it is, or framed as a chunk (and the last
// chunk after it when `last`). `chunk_head` holds the chunk's size line; keep it until written.
inline std::array<boost::asio::const_buffer, 4> body_piece_buffers(std::string_view data, bool last,
                                                                   bool chunked,
                                                                   std::string& chunk_head) {
  static constexpr char kCrlf[] = "\r\n";
  static constexpr char kLastChunk[] = "0\r\n\r\n";
  std::array<boost::asio::const_buffer, 4> out{};
  if (!chunked) {
    out[1] = boost::asio::buffer(data.data(), data.size());
    return out;
  }
  if (!data.empty()) {
    char hex[17];
    auto [end, ec] = std::to_chars(hex, hex + 16, data.size(), 16);
    chunk_head.assign(hex, end).append(kCrlf);
    out[0] = boost::asio::buffer(chunk_head);
    out[1] = boost::asio::buffer(data.data(), data.size());
    out[2] = boost::asio::buffer(kCrlf, 2);
  }
  if (last) out[3] = boost::asio::buffer(kLastChunk, sizeof(kLastChunk) - 1);
  return out;
}

}  // namespace sluice::detail
