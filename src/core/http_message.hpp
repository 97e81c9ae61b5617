// The concrete HTTP message types behind sluice::Request / sluice::Response: Beast messages
// with string bodies, whose header fields are allocated by FieldAllocator (per-thread free
// lists: no malloc per field), plus the fields the chain added, kept flat beside them
// (core/extra_fields.hpp). Only server, adapter and gateway code includes this header.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/extra_fields.hpp"
#include "core/field_allocator.hpp"

namespace sluice::detail {

namespace http = boost::beast::http;

using Fields = http::basic_fields<FieldAllocator<char>>;
using RequestBase = http::message<true, http::string_body, Fields>;
using ResponseBase = http::message<false, http::string_body, Fields>;

// `extra` holds fields added by the chain that Beast does not have yet (core/extra_fields.hpp):
// code that reads or replaces the Beast fields of a message the chain ran on calls
// flush_extra_fields first. Request/Response's own header functions read both.
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
