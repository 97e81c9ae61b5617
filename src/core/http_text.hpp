// Small pieces of HTTP's text grammar that several parsers share (RFC 9110 section 5.6).
//
//   trim_ows("  gzip \t") == "gzip"
//   has_folded_line("GET / HTTP/1.1\r\nA: 1\r\n 2\r\n\r\n", n) == true
//   for_each_list_item("close, Upgrade", [](std::string_view token) { ... });  // "close",
//   "Upgrade"
#pragma once

#include <cstring>
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

}  // namespace sluice::detail
