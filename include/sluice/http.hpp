// sluice::Request and sluice::Response — light views over the HTTP messages a server parsed.
// They keep Beast out of every file that includes a middleware header.
//
//   std::string_view ua = ex.request().header("User-Agent");
//   ex.response().set_header("X-Served-By", "sluice");
//   ex.response().set_status(204);
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace sluice {

namespace detail {
struct RequestMessage;  // a boost::beast::http::request<string_body>; see src/core/http_message.hpp
struct ResponseMessage;  // a boost::beast::http::response<string_body>
}  // namespace detail

using HeaderVisitor = std::function<void(std::string_view name, std::string_view value)>;

class Request {
 public:
  explicit Request(detail::RequestMessage& message) : message_(&message) {}

  std::string_view method() const;
  std::string_view target() const;  // path and query, as sent
  std::string_view path() const;    // target without the query
  std::string_view query() const;   // after '?', empty when none
  int version() const;              // 11 for HTTP/1.1
  bool keep_alive() const;

  // The first value of a header, or empty when absent. Names are case-insensitive.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  void set_header(std::string_view name, std::string_view value);  // replaces all values
  void add_header(std::string_view name, std::string_view value);
  void remove_header(std::string_view name);
  void visit_headers(const HeaderVisitor& visit) const;

  void set_target(std::string_view target);
  const std::string& body() const;
  std::string& body();

  detail::RequestMessage& native() { return *message_; }
  const detail::RequestMessage& native() const { return *message_; }

 private:
  detail::RequestMessage* message_;
};

class Response {
 public:
  explicit Response(detail::ResponseMessage& message) : message_(&message) {}

  int status() const;
  void set_status(int status);
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  void set_header(std::string_view name, std::string_view value);
  void add_header(std::string_view name, std::string_view value);
  void remove_header(std::string_view name);
  void visit_headers(const HeaderVisitor& visit) const;
  const std::string& body() const;
  std::string& body();
  void set_body(std::string body, std::string_view content_type);
  // Resets status, headers and body: used before writing an answer from scratch.
  void clear();

  detail::ResponseMessage& native() { return *message_; }
  const detail::ResponseMessage& native() const { return *message_; }

 private:
  detail::ResponseMessage* message_;
};

}  // namespace sluice
