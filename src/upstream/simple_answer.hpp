// SimpleAnswer — the upstream answer most proxied requests get, read without Beast's parser: an
// HTTP/1.x head and a Content-Length body, both already in the connection's buffer.
//
//   SimpleAnswer answer;
//   if (parse_simple_answer(buffer_bytes, max_body, answer)) {
//     ... answer.status, answer.keep_alive, body = buffer_bytes.substr(answer.head_bytes,
//     answer.body_bytes) ...
//     apply_simple_answer(answer, client_response);  // end-to-end fields + Via
//   }
//
// Why: Beast's parser stores every field in its node-based container (an allocation and a tree
// insert each), and the proxy then erased the hop-by-hop ones and Content-Length again: about
// 6,000 instructions for nginx's five-field answer, a quarter of the proxy's user-space cost.
// This reader is strict and returns false for everything it does not handle: a head or body not
// yet complete, chunked or close-delimited bodies, 1xx/204/304, a Connection naming other headers,
// obsolete line folding, any invalid byte, more than kMaxFields fields, a head over kMaxHead bytes.
// Beast's parser then reads the same bytes from the start, so the rare and the malformed keep one
// careful path and its error answers.
#pragma once

#include <array>
#include <boost/beast/http/field.hpp>
#include <cstdint>
#include <string_view>

namespace sluice::detail {
struct ResponseMessage;
}

namespace sluice::upstream {

struct SimpleAnswer {
  static constexpr std::size_t kMaxHead = 2048;
  static constexpr std::size_t kMaxFields = 32;

  struct Field {
    boost::beast::http::field name;
    std::uint16_t name_at, name_size, value_at, value_size;  // offsets into head
  };

  int status = 0;
  unsigned version = 11;
  bool keep_alive = true;
  std::size_t head_bytes = 0;  // the head with its blank line
  std::uint64_t body_bytes = 0;
  int via = -1;  // index of the upstream's Via field, if any
  std::size_t field_count = 0;
  std::array<Field, kMaxFields> fields;  // end-to-end fields only, in order
  std::array<char, kMaxHead> head;       // a copy of the head's bytes
};

// True when `bytes` (the start of the buffered answer) hold a whole simple answer whose body is at
// most `max_body` bytes; fills `out`. False: let Beast's parser read these bytes.
bool parse_simple_answer(std::string_view bytes, std::uint64_t max_body, SimpleAnswer& out);

// The client's response head from the answer: status, its fields, `Via: 1.1 sluice` added (or
// appended to the upstream's). The caller sets the body and the client's version.
void apply_simple_answer(const SimpleAnswer& answer, detail::ResponseMessage& message);

}  // namespace sluice::upstream
