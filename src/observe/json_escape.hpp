// JSON string escaping of arbitrary bytes, for log lines and OTLP/JSON built by hand.
// The output is always valid JSON and valid UTF-8: invalid UTF-8 becomes the escape \ufffd.
//
//   std::string line = "{\"path\":";
//   sluice::observe::append_json_string(line, request_path);   // adds the quotes
//   line += '}';
#pragma once

#include <string>
#include <string_view>

namespace sluice::observe {

class ByteBuffer;

// Appends `in` escaped, without surrounding quotes:
// - '"' and '\\' are backslash-escaped; \b \f \n \r \t use their short forms;
// - other bytes below 0x20 and DEL (0x7f) become \u00XX (DEL is legal JSON, but it is a
//   control character that has no business in a log line);
// - well-formed UTF-8 (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF)
//   is copied unchanged (readable, and half the size of \uXXXX escapes);
// - each maximal ill-formed subsequence (the Unicode "substitution of maximal subparts"
//   practice) becomes one \ufffd; a truncated sequence at the end of `in` is one of them.
// Runs of plain printable ASCII are copied in one append.
void append_json_escaped(std::string& out, std::string_view in);
void append_json_escaped(ByteBuffer& out, std::string_view in);

// As append_json_escaped, with the surrounding quotes.
void append_json_string(std::string& out, std::string_view in);
void append_json_string(ByteBuffer& out, std::string_view in);

// Convenience for tests and cold paths.
std::string json_escape(std::string_view in);

}  // namespace sluice::observe
