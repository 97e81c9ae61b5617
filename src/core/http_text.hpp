// Small pieces of HTTP's text grammar that several parsers share (RFC 9110 section 5.6).
//
//   trim_ows("  gzip \t") == "gzip"
//   has_folded_line("GET / HTTP/1.1\r\nA: 1\r\n 2\r\n\r\n", n) == true
//   for_each_list_item("close, Upgrade", [](std::string_view token) { ... });  // "close",
//   "Upgrade"
//   percent_decode("a%20b") == "a b";  percent_decode("%zz") == std::nullopt
#pragma once

#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::detail {

// Without the optional whitespace (spaces and tabs) around a value or list item.
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Calls fn(item) for each non-empty item of a comma-separated list, trimmed; stops early when
// fn returns false. Returns false if it stopped early.
template <class Fn>
bool for_each_list_item(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto item = trim_ows(list.substr(0, comma));
    if (!item.empty() && !fn(item)) return false;
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return true;
}

// True when a line of the message head `head[0, size)` starts with a space or a tab: an obs-fold
// (a field value continued on the next line) or whitespace before the first field, both of
// which a server must refuse in a request (RFC 9112 sections 2.2 and 5.2).
inline bool has_folded_line(const char* head, std::size_t size) {
  const char* end = head + size;
  for (const char* p = head; p < end;) {
    const char* lf =
        static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (lf == nullptr || lf + 1 >= end) return false;
    if (lf[1] == ' ' || lf[1] == '\t') return true;
    p = lf + 1;
  }
  return false;
}

// RFC 3986 percent-decoding; nullopt for a '%' not followed by two hex digits.
inline std::optional<std::string> percent_decode(std::string_view s) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>((hi << 4) | lo);
    i += 2;
  }
  return out;
}

}  // namespace sluice::detail
