// HeaderName: a header name resolved once, when the config is read, to Beast's field code; and
// the per-request edits that use it. Beast's set(string_view, value) hashes the name
// (string_to_field, ≈ 90 instructions, callgrind) on every call; with the code known, an edit is
// a scan of the message's few fields and one insert.
//
//   HeaderName env("X-Env");                                  // at config time
//   set_field(ex.request().native(), env, "prod");            // per request
//   remove_fields(ex.response().native(), env);
//
// Same results as Request/Response::set_header, add_header and remove_header (names compared
// without regard to case, a set replaces every field of that name and appends the new one last).
#pragma once

#include <string>
#include <string_view>

#include "core/http_message.hpp"

namespace sluice::detail {

struct HeaderName {
  explicit HeaderName(std::string name)
      : text(std::move(name)), code(http::string_to_field({text.data(), text.size()})) {}
  std::string text;
  http::field code;
};

// Every field called `name` (a linear scan, lengths compared first: a message has a handful).
void remove_fields(Fields& fields, std::string_view name);
void set_field(Fields& fields, const HeaderName& name, std::string_view value);
inline void add_field(Fields& fields, const HeaderName& name, std::string_view value) {
  fields.insert(name.code, {name.text.data(), name.text.size()}, {value.data(), value.size()});
}

}  // namespace sluice::detail
