// HeaderName: a header name resolved once, when the config is read, to Beast's field code; and
// the per-request edits that use it. Beast's set(string_view, value) hashes the name
// (string_to_field, ≈ 90 instructions, callgrind) on every call; with the code known, an edit is
// a scan of the message's few fields and an append to its extra fields (core/extra_fields.hpp).
//
//   HeaderName env("X-Env");                                  // at config time
//   set_field(ex.request(), env, "prod");                     // per request
//   remove_fields(ex.response(), env.text);
//
// Same results as Request/Response::set_header, add_header and remove_header (which use these):
// names compared without regard to case, a set replaces every field of that name and appends
// the new one last, an add goes after the last field of its name (or last), values trimmed.
#pragma once

#include <string>
#include <string_view>

#include "core/http_message.hpp"
#include "sluice/http.hpp"

namespace sluice::detail {

struct HeaderName {
  explicit HeaderName(std::string name)
      : text(std::move(name)), code(http::string_to_field({text.data(), text.size()})) {}
  std::string text;
  http::field code;
};

// Every Beast field called `name` (a linear scan, lengths compared first: a message has a
// handful). The extra fields are not looked at.
void remove_beast_fields(Fields& fields, std::string_view name);
bool has_beast_field(const Fields& fields, std::string_view name);

// Beast's own whitespace trim of a field value (leading and trailing spaces and tabs).
inline std::string_view trim_value(std::string_view v) {
  // Almost every value starts and ends with a printable byte: two compares, not four (≈ 10
  // instructions per header edit, callgrind); anything at or below ' ' takes the loops.
  if (v.empty() ||
      (static_cast<unsigned char>(v.front()) > ' ' && static_cast<unsigned char>(v.back()) > ' '))
    return v;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  return v;
}

// Message = RequestMessage or ResponseMessage.
template <class Message>
void remove_fields(Message& m, std::string_view name) {
  remove_beast_fields(m, name);
  m.extra.erase(name);
}

template <class Message>
void set_field(Message& m, http::field code, std::string_view name, std::string_view value) {
  remove_beast_fields(m, name);
  m.extra.erase(code, name);
  if (kept_aside(code) && m.extra.add(code, name, trim_value(value))) return;
  flush_extra_fields(m);  // Beast appends last: the extra fields must be there before it
  m.insert(code, {name.data(), name.size()}, {value.data(), value.size()});
}

template <class Message>
void add_field(Message& m, http::field code, std::string_view name, std::string_view value) {
  if (kept_aside(code)) {
    if (m.extra.find(code, name) >= 0 || !has_beast_field(m, name)) {
      if (m.extra.add(code, name, trim_value(value))) return;
    } else {
      // Beast puts it after that name's fields, which come before every extra field.
      m.insert(code, {name.data(), name.size()}, {value.data(), value.size()});
      return;
    }
  }
  flush_extra_fields(m);
  m.insert(code, {name.data(), name.size()}, {value.data(), value.size()});
}

template <class Message>
void set_field(Message& m, const HeaderName& name, std::string_view value) {
  set_field(m, name.code, name.text, value);
}
template <class Message>
void add_field(Message& m, const HeaderName& name, std::string_view value) {
  add_field(m, name.code, name.text, value);
}

inline void set_field(Request& r, const HeaderName& n, std::string_view v) {
  set_field(r.native(), n, v);
}
inline void set_field(Response& r, const HeaderName& n, std::string_view v) {
  set_field(r.native(), n, v);
}
inline void add_field(Request& r, const HeaderName& n, std::string_view v) {
  add_field(r.native(), n, v);
}
inline void add_field(Response& r, const HeaderName& n, std::string_view v) {
  add_field(r.native(), n, v);
}
inline void remove_fields(Request& r, std::string_view name) {
  remove_fields(r.native(), name);
}
inline void remove_fields(Response& r, std::string_view name) {
  remove_fields(r.native(), name);
}

}  // namespace sluice::detail
