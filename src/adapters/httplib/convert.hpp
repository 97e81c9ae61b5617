// Conversions between cpp-httplib's messages and sluice's (Beast) messages, for the adapter.
//
//   to_message(httplib_request, host.request());
//   write_response(host.response(), httplib_response);
#pragma once

#include <httplib.h>

#include "core/http_message.hpp"

namespace sluice::httplib_adapter {

// Method, target, version, headers (without httplib's REMOTE_ADDR-style pseudo headers), body.
void to_message(const httplib::Request& in, detail::RequestMessage& out);
// The request as the middlewares left it, for an httplib handler: `original` with the
// message's target, headers and body.
void apply_message(const detail::RequestMessage& in, httplib::Request& out);
// Status, headers and body of an httplib response into a sluice response (framing headers are
// left to the writer).
void from_httplib(httplib::Response& in, detail::ResponseMessage& out);
// The final sluice response into httplib's; httplib computes Content-Length itself.
void to_httplib(detail::ResponseMessage& in, httplib::Response& out);

}  // namespace sluice::httplib_adapter
