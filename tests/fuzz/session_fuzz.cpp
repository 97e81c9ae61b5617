// libFuzzer target: the server's request path (server/session.cpp) from a client's bytes to its
// answers: parsing, framing checks (smuggling), limits, pipelining, buffered and streamed
// bodies, chunked requests and answers, 100-continue, keep-alive and close. The real Session
// reads the input from a socketpair in pieces (session_harness.hpp); the first byte picks the
// piece size, the second the limits. Checked besides "no crash, no ASan/UBSan report": the
// session ends after the client's EOF, and what it wrote is a sequence of well-formed HTTP/1.1
// answers (each parsed by Beast, nothing after the last), every one of them from the handler or
// a declared error (400, 408, 413, 417, 431, 501, 505).
//
//   make fuzz-build && build-fuzz/session_fuzz build-fuzz/corpus/session tests/fuzz/corpus/session
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "session_harness.hpp"

namespace {

namespace http = boost::beast::http;
using sluice::fuzz::check;

sluice::server::ServerLimits limits_for(std::uint8_t selector) {
  sluice::server::ServerLimits l;
  if (selector & 1) {  // small limits, so the fuzzer reaches them with short inputs
    l.max_header_bytes = 256;
    l.max_headers = 6;
    l.max_body_bytes = 300;
    l.buffer_body_bytes = 16;  // bodies above it are streamed to the handler
  }
  return l;
}

bool declared_error(unsigned status) {
  switch (status) {
    case 400:
    case 408:
    case 413:
    case 417:
    case 431:
    case 501:
    case 505:
      return true;
    default:
      return false;
  }
}

// The session's own answer to a HEAD request whose body was bad: an error that closes the
// connection, sent as a HEAD answer (its head, Content-Length included, and no content: RFC 9110
// 9.3.2), so nothing follows its head. The handler's answers say HEAD in X-Method; the
// session's errors cannot, so such an answer is taken as one to HEAD only when the input sent a
// HEAD request and the answer is the last, a declared error, closing, with no byte after its head.
bool session_error_to_head(std::string_view head, std::string_view out, std::size_t head_end,
                           bool input_has_head) {
  if (!input_has_head || out.size() != head_end + 4) return false;
  if (head.find("\r\nConnection: close") == std::string_view::npos) return false;
  unsigned status = 0;
  if (head.size() < 12 || std::sscanf(std::string(head.substr(9, 3)).c_str(), "%u", &status) != 1)
    return false;
  return declared_error(status);
}

// Every answer parses; 1xx only as 100 Continue; nothing is left over.
void check_answers(std::string_view out, bool input_has_head) {
  while (!out.empty()) {
    const auto head_end = out.find("\r\n\r\n");
    check(head_end != std::string_view::npos, "an answer's head is complete");
    const std::string_view head = out.substr(0, head_end);
    const bool to_head = head.find("\r\nX-Method: HEAD\r\n") != std::string_view::npos ||
                         head.ends_with("\r\nX-Method: HEAD") ||
                         session_error_to_head(head, out, head_end, input_has_head);
    http::response_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(1 << 26);
    p.skip(to_head);
    boost::beast::error_code ec;
    const std::size_t used = p.put(boost::asio::buffer(out.data(), out.size()), ec);
    if (ec == http::error::need_more || (!ec && !p.is_done())) {
      // Only an answer whose body runs to the end of the connection may end without framing.
      p.put_eof(ec);
    }
    check(!ec && p.is_done(), "an answer parses whole");
    const unsigned status = p.get().result_int();
    check(status == 100 || status == 200 || declared_error(status), "a declared status");
    if (status == 100) check(used == head_end + 4, "100 Continue has no body");
    out.remove_prefix(used);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t piece = data[0] >= 192 ? size : (data[0] % 64) + 1;
  static sluice::fuzz::SessionHarness plain(limits_for(0), {},
                                            std::make_shared<sluice::fuzz::EchoDispatcher>());
  static sluice::fuzz::SessionHarness small(limits_for(1), {},
                                            std::make_shared<sluice::fuzz::EchoDispatcher>());
  auto& harness = (data[1] & 1) ? small : plain;
  const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string out = harness.run(in, piece);
  check_answers(out, in.find("HEAD ") != std::string_view::npos);
  return 0;
}
