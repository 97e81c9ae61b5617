// The concrete HTTP message types behind sluice::Request / sluice::Response: Beast messages
// with string bodies, whose header fields are allocated by FieldAllocator (per-thread free
// lists: no malloc per field). Only server, adapter and gateway code includes this header.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/field_allocator.hpp"

namespace sluice::detail {

namespace http = boost::beast::http;

using Fields = http::basic_fields<FieldAllocator<char>>;
using RequestBase = http::message<true, http::string_body, Fields>;
using ResponseBase = http::message<false, http::string_body, Fields>;

struct RequestMessage : RequestBase {
  using RequestBase::RequestBase;
  using RequestBase::operator=;
};

struct ResponseMessage : ResponseBase {
  using ResponseBase::ResponseBase;
  using ResponseBase::operator=;
};

}  // namespace sluice::detail
