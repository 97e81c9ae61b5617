// Boost's assertions stay on in the fuzz targets (they catch misuse of Beast and Asio), through
// this handler (BOOST_ENABLE_ASSERT_HANDLER in FUZZ_FLAGS), with one exception: Beast 1.74's
// `BOOST_ASSERT(n >= 5)` in basic_parser::parse_chunk_header is wrong. After a last chunk
// ("0\r\n") the parser may be handed as few as 3 bytes of the final CRLF and returns need_more
// correctly; Beast fixed the assertion in boostorg/beast#2861 (2024). Release builds compile
// the assertion out. Every other failed assertion aborts, as BOOST_ASSERT would.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (std::string_view(expr) == "n >= 5" &&
      std::string_view(function).find("parse_chunk_header") != std::string_view::npos)
    return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed.\n", file, line, function, expr);
  std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file,
                          long line) {
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed: %s\n", file, line, function, expr, msg);
  std::abort();
}

}  // namespace boost
