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

// Message::keep_alive() without Beast's keyed lookup of Connection (a case-insensitive tree
// search): most messages have no Connection field, and then the version decides.
template <class Message>
bool keep_alive_of(const Message& m) {
  for (const auto& f : m)
    if (f.name() == http::field::connection) return m.keep_alive();
  return m.version() >= 11;
}

}  // namespace sluice::detail
