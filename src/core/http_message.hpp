// The concrete HTTP message types behind sluice::Request / sluice::Response: Beast messages
// with string bodies, whose header fields are allocated by FieldAllocator (per-thread free
// lists: no malloc per field), plus the fields the chain added, kept flat beside them
// (core/extra_fields.hpp). Only server, adapter and gateway code includes this header.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string_view>

#include "core/extra_fields.hpp"
#include "core/field_allocator.hpp"

namespace sluice::detail {

namespace http = boost::beast::http;

using Fields = http::basic_fields<FieldAllocator<char>>;
using RequestBase = http::message<true, http::string_body, Fields>;
using ResponseBase = http::message<false, http::string_body, Fields>;

// `extra` holds fields added by the chain that Beast does not have yet (core/extra_fields.hpp):
// a reader of the whole header uses for_each_field (below); code that replaces the Beast fields
// of a message the chain ran on calls flush_extra_fields first.
struct RequestMessage : RequestBase {
  using RequestBase::RequestBase;
  using RequestBase::operator=;
  ExtraFields extra;
};

struct ResponseMessage : ResponseBase {
  using ResponseBase::ResponseBase;
  using ResponseBase::operator=;
  ExtraFields extra;
};

// Every header field of `m` in wire order — Beast's fields, then the extra ones — as
// fn(http::field code, std::string_view name, std::string_view value). The one way to read a
// whole header: a reader written against Beast's fields alone would miss the chain's additions
// (serialize_head, build_upstream_request, the detached calls' copy and Request/Response's
// visit_headers all go through here).
//
//   for_each_field(msg, [&](http::field code, std::string_view name, std::string_view value) {
//     if (code != http::field::host) out.append(name).append(": ").append(value);
//   });
template <class Message, class Fn>
inline void for_each_field(const Message& m, Fn&& fn) {
  for (const auto& f : m) {
    const auto name = f.name_string();
    const auto value = f.value();
    fn(f.name(), std::string_view(name.data(), name.size()),
       std::string_view(value.data(), value.size()));
  }
  const ExtraFields& extra = m.extra;
  for (std::size_t i = 0; i < extra.size(); ++i)
    fn(extra.code(i), extra.name(i), extra.value(i));
}

// Moves the extra fields into the Beast fields, in their order (each name is new there, so
// each lands last: the order Beast would have given them).
template <class Message>
void flush_extra_fields(Message& m) {
  if (m.extra.empty()) return;
  for (std::size_t i = 0; i < m.extra.size(); ++i) {
    const auto name = m.extra.name(i);
    const auto value = m.extra.value(i);
    m.insert(m.extra.code(i), {name.data(), name.size()}, {value.data(), value.size()});
  }
  m.extra.clear();
}

}  // namespace sluice::detail
