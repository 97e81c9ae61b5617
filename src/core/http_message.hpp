// The concrete HTTP message types behind sluice::Request / sluice::Response: Beast messages
// with string bodies. Only server, adapter and gateway code includes this header.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace sluice::detail {

namespace http = boost::beast::http;

struct RequestMessage : http::request<http::string_body> {
  using http::request<http::string_body>::request;
  using http::request<http::string_body>::operator=;
};

struct ResponseMessage : http::response<http::string_body> {
  using http::response<http::string_body>::response;
  using http::response<http::string_body>::operator=;
};

}  // namespace sluice::detail
