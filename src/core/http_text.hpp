// Small pieces of HTTP's text grammar that several parsers share (RFC 9110 section 5.6).
//
//   trim_ows("  gzip \t") == "gzip"
//   for_each_list_item("close, Upgrade", [](std::string_view token) { ... });  // "close",
//   "Upgrade"
#pragma once

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

}  // namespace sluice::detail
