// sluice::BodyStream — a message body that arrives or leaves in pieces, so that a large upload
// or download passes through with bounded memory instead of being held whole.
//
// The server buffers small request bodies (Request::body()); a body larger than
// `limits.buffer_body_bytes` is handed to the handler as a stream instead
// (Exchange::request_body_stream()). A handler may answer with a stream too
// (Exchange::set_response_body_stream()); the server then writes the body as the stream gives it,
// with Content-Length when the length is known and chunked otherwise.
//
//   void pump(std::shared_ptr<BodyStream> in) {      // read until the last piece
//     in->read([in](BodyPiece p) {
//       if (p.failed) return give_up(p.status);
//       consume(p.data);                                 // valid until the next read()
//       if (!p.last) pump(in);
//     });
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

namespace sluice {

struct BodyPiece {
  std::string_view data;  // may be empty (e.g. the last piece)
  bool last = false;      // the body is complete after this piece
  bool failed = false;    // the body cannot be read to its end (peer gone, too large, timeout)
  int status = 0;         // when failed: the HTTP status that describes it (400, 408, 413, 502)
};

class BodyStream {
 public:
  using ReadFn = std::function<void(BodyPiece)>;
  virtual ~BodyStream() = default;
  // Delivers the next piece to `fn`, on the request's worker, possibly before read() returns.
  // One read at a time: call read() again only after `fn` ran. A piece's data stays valid until
  // the next read() or until the stream is destroyed.
  virtual void read(ReadFn fn) = 0;
  // The whole body's length when the sender declared it (Content-Length), else nullopt.
  virtual std::optional<std::uint64_t> length() const = 0;
};

}  // namespace sluice
