#include "sluice/http.hpp"

#include <boost/beast/core/string.hpp>

#include "core/header_name.hpp"
#include "core/http_message.hpp"

namespace sluice {
namespace {
namespace http = boost::beast::http;

std::string_view view(boost::beast::string_view s) {
  return {s.data(), s.size()};
}
boost::beast::string_view bview(std::string_view s) {
  return {s.data(), s.size()};
}

// A linear scan in arrival order, lengths compared first: a request has a handful of fields,
// and Beast's keyed lookup costs a case-insensitive compare per tree level (~4x more here).
template <class Fields>
typename Fields::const_iterator find_field(const Fields& fields, std::string_view name) {
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    const auto n = it->name_string();
    if (n.size() == name.size() && boost::beast::iequals(n, bview(name))) return it;
  }
  return fields.end();
}

// Beast's fields first, then the extra ones (which come after them on the wire).
template <class Message>
bool first_value(const Message& m, std::string_view name, std::string_view& out) {
  if (auto it = find_field(m, name); it != m.end()) {
    out = view(it->value());
    return true;
  }
  if (const int i = m.extra.find(name); i >= 0) {
    out = m.extra.value(static_cast<std::size_t>(i));
    return true;
  }
  return false;
}

template <class Message>
void visit_fields(const Message& m, const HeaderVisitor& visit) {
  detail::for_each_field(
      m, [&](http::field, std::string_view name, std::string_view value) { visit(name, value); });
}

http::field code_of(std::string_view name) {
  return http::string_to_field(bview(name));
}
}  // namespace

std::string_view Request::method() const {
  return view(message_->method_string());
}
std::string_view Request::target() const {
  return view(message_->target());
}
std::string_view Request::path() const {
  std::string_view t = target();
  auto q = t.find('?');
  return q == std::string_view::npos ? t : t.substr(0, q);
}
std::string_view Request::query() const {
  std::string_view t = target();
  auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}
int Request::version() const {
  return static_cast<int>(message_->version());
}
bool Request::keep_alive() const {
  return message_->keep_alive();
}
std::string_view Request::header(std::string_view name) const {
  std::string_view value;
  first_value(*message_, name, value);
  return value;
}
bool Request::has_header(std::string_view name) const {
  std::string_view value;
  return first_value(*message_, name, value);
}
void Request::set_header(std::string_view name, std::string_view value) {
  detail::set_field(*message_, code_of(name), name, value);
}
void Request::add_header(std::string_view name, std::string_view value) {
  detail::add_field(*message_, code_of(name), name, value);
}
void Request::remove_header(std::string_view name) {
  detail::remove_fields(*message_, name);
}
void Request::visit_headers(const HeaderVisitor& visit) const {
  visit_fields(*message_, visit);
}
void Request::set_target(std::string_view target) {
  message_->target(bview(target));
}
const std::string& Request::body() const {
  return message_->body();
}
std::string& Request::body() {
  return message_->body();
}

int Response::status() const {
  return static_cast<int>(message_->result_int());
}
void Response::set_status(int status) {
  message_->result(static_cast<unsigned>(status));
}
std::string_view Response::header(std::string_view name) const {
  std::string_view value;
  first_value(*message_, name, value);
  return value;
}
bool Response::has_header(std::string_view name) const {
  std::string_view value;
  return first_value(*message_, name, value);
}
void Response::set_header(std::string_view name, std::string_view value) {
  detail::set_field(*message_, code_of(name), name, value);
}
void Response::add_header(std::string_view name, std::string_view value) {
  detail::add_field(*message_, code_of(name), name, value);
}
void Response::remove_header(std::string_view name) {
  detail::remove_fields(*message_, name);
}
void Response::visit_headers(const HeaderVisitor& visit) const {
  visit_fields(*message_, visit);
}
const std::string& Response::body() const {
  return message_->body();
}
std::string& Response::body() {
  return message_->body();
}
void Response::set_body(std::string body, std::string_view content_type) {
  message_->body() = std::move(body);
  detail::set_field(*message_, http::field::content_type, "Content-Type", content_type);
}
void Response::clear() {
  auto version = message_->version();
  static_cast<detail::ResponseBase&>(*message_) = {};
  message_->extra.clear();
  message_->version(version);
}

}  // namespace sluice
