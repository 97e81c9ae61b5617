#include "sluice/http.hpp"

#include <boost/beast/core/string.hpp>

#include "core/http_message.hpp"

namespace sluice {
namespace {
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

template <class Fields>
std::string_view first_value(const Fields& fields, std::string_view name) {
  auto it = find_field(fields, name);
  return it == fields.end() ? std::string_view{} : view(it->value());
}

template <class Fields>
void visit_fields(const Fields& fields, const HeaderVisitor& visit) {
  for (const auto& field : fields)
    visit(view(field.name_string()), view(field.value()));
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
  return first_value(*message_, name);
}
bool Request::has_header(std::string_view name) const {
  return find_field(*message_, name) != message_->end();
}
void Request::set_header(std::string_view name, std::string_view value) {
  message_->set(bview(name), bview(value));
}
void Request::add_header(std::string_view name, std::string_view value) {
  message_->insert(bview(name), bview(value));
}
void Request::remove_header(std::string_view name) {
  message_->erase(bview(name));
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
  return first_value(*message_, name);
}
bool Response::has_header(std::string_view name) const {
  return find_field(*message_, name) != message_->end();
}
void Response::set_header(std::string_view name, std::string_view value) {
  message_->set(bview(name), bview(value));
}
void Response::add_header(std::string_view name, std::string_view value) {
  message_->insert(bview(name), bview(value));
}
void Response::remove_header(std::string_view name) {
  message_->erase(bview(name));
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
  message_->set(boost::beast::http::field::content_type, bview(content_type));
}
void Response::clear() {
  auto version = message_->version();
  *message_ = detail::ResponseMessage{};
  message_->version(version);
}

}  // namespace sluice
