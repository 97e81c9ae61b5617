// ExtraFields: header fields added to a message during the chain, kept in a small flat list
// inside the message instead of Beast's `basic_fields` (a case-insensitive red-black tree plus a
// list, and a block per field: ≈ 230 instructions an insert, callgrind). On the wire and to
// every reader they come after the message's Beast fields, in the order they were added — the
// order Beast itself would give them — so nothing can tell the difference:
//   - Request/Response::header and has_header look in both;
//   - code that reads a whole header goes through detail::for_each_field (core/http_message.hpp),
//     which visits both lists in wire order: visit_headers, Session::serialize_head, the proxy's
//     upstream request, the detached calls' copy — never a loop over Beast's fields alone;
//   - code that replaces the Beast fields of a message the chain has run on (through
//     Request/Response::native(): the httplib adapter, the upstream's answer) calls
//     flush_extra_fields (core/http_message.hpp) first, which moves them into Beast's fields.
//
//   RequestMessage m;                                   // m.extra is empty
//   set_field(m, HeaderName("X-Env"), "prod");          // core/header_name.hpp: lands in m.extra
//   m.extra.find("x-env");                              // 0
//   flush_extra_fields(m);                              // now a Beast field, m.extra empty again
//
// Only names without a Beast field code (http::field::unknown: X-Request-Id, X-Env, ...) and
// Content-Type (set by every answer; nothing looks it up by code) go here — kept_aside() — so
// every lookup by code (Content-Length, Connection, Host, ...) stays right with Beast alone. Fixed
// inline storage: no allocation; when a field does not fit, the caller flushes and uses Beast.
// Invariant kept by the callers: a name is never both here and in the Beast fields.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

namespace sluice::detail {

// The field codes that may be kept here (see above).
inline bool kept_aside(boost::beast::http::field code) {
  return code == boost::beast::http::field::unknown ||
         code == boost::beast::http::field::content_type;
}

class ExtraFields {
 public:
  static constexpr std::size_t kMaxFields = 8;
  static constexpr std::size_t kTextBytes = 320;

  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  std::string_view name(std::size_t i) const {
    return {text_.data() + at_[i].name, at_[i].name_len};
  }
  boost::beast::http::field code(std::size_t i) const { return at_[i].code; }
  std::string_view value(std::size_t i) const {
    return {text_.data() + at_[i].name + at_[i].name_len, at_[i].value_len};
  }

  // The index of the first field called `name` (case-insensitive), or -1.
  int find(std::string_view name) const {
    for (std::size_t i = 0; i < count_; ++i)
      if (same_name(i, name)) return static_cast<int>(i);
    return -1;
  }

  // The same with `code`, Beast's code for `name`: equal names have equal codes, so a field of
  // another code is passed over without comparing names.
  int find(boost::beast::http::field code, std::string_view name) const {
    for (std::size_t i = 0; i < count_; ++i)
      if (at_[i].code == code && same_name(i, name)) return static_cast<int>(i);
    return -1;
  }

  // Appends a field, or inserts it right after the last field of the same name (Beast keeps a
  // name's fields together). `code` is Beast's code for `name`. False, with nothing changed,
  // when there is no room.
  bool add(boost::beast::http::field code, std::string_view name, std::string_view value) {
    if (count_ == kMaxFields || name.size() + value.size() > kTextBytes - used_) return false;
    std::size_t pos = count_;
    for (std::size_t i = count_; i-- > 0;) {
      if (at_[i].code == code && same_name(i, name)) {
        pos = i + 1;
        break;
      }
    }
    for (std::size_t i = count_; i > pos; --i)
      at_[i] = at_[i - 1];
    at_[pos] = {code, static_cast<std::uint16_t>(used_), static_cast<std::uint16_t>(name.size()),
                static_cast<std::uint16_t>(value.size())};
    // An empty view may have a null data(): memcpy's pointers must not be null, even for 0 bytes.
    if (!name.empty()) std::memcpy(text_.data() + used_, name.data(), name.size());
    if (!value.empty()) std::memcpy(text_.data() + used_ + name.size(), value.data(), value.size());
    used_ += name.size() + value.size();
    ++count_;
    return true;
  }

  // Every field called `name`. (Their text stays used until clear(): a message has few edits.)
  void erase(std::string_view name) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count_; ++i)
      if (!same_name(i, name)) at_[kept++] = at_[i];
    count_ = kept;
  }
  void erase(boost::beast::http::field code, std::string_view name) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count_; ++i)
      if (at_[i].code != code || !same_name(i, name)) at_[kept++] = at_[i];
    count_ = kept;
  }

  void clear() {
    count_ = 0;
    used_ = 0;
  }

 private:
  bool same_name(std::size_t i, std::string_view name) const {
    return at_[i].name_len == name.size() &&
           boost::beast::iequals(boost::beast::string_view(text_.data() + at_[i].name, name.size()),
                                 boost::beast::string_view(name.data(), name.size()));
  }

  struct Slot {
    boost::beast::http::field code;
    std::uint16_t name;  // offset in text_; the value follows the name
    std::uint16_t name_len;
    std::uint16_t value_len;
  };
  std::size_t count_ = 0;
  std::size_t used_ = 0;
  std::array<Slot, kMaxFields> at_;
  std::array<char, kTextBytes> text_;
};

}  // namespace sluice::detail
