#include "adapters/httplib/convert.hpp"

#include <array>
#include <string_view>

namespace sluice::httplib_adapter {

namespace {
namespace http = boost::beast::http;

// httplib adds these to Request::headers itself; they are not the client's headers.
bool is_pseudo_header(std::string_view name) {
  static constexpr std::array<std::string_view, 4> kPseudo = {"REMOTE_ADDR", "REMOTE_PORT",
                                                              "LOCAL_ADDR", "LOCAL_PORT"};
  for (auto p : kPseudo) {
    if (name == p) return true;
  }
  return false;
}

// Headers the writer owns: copying them would contradict the body it frames.
bool is_framing_header(std::string_view name) {
  return boost::beast::iequals(name, "Content-Length") ||
         boost::beast::iequals(name, "Transfer-Encoding") ||
         boost::beast::iequals(name, "Connection");
}
}  // namespace

void to_message(const httplib::Request& in, detail::RequestMessage& out) {
  out.method_string(in.method);
  out.target(in.target.empty() ? in.path : in.target);
  out.version(in.version == "HTTP/1.0" ? 10 : 11);
  for (const auto& [name, value] : in.headers) {
    if (!is_pseudo_header(name)) out.insert(name, value);
  }
  out.body() = in.body;
}

void apply_message(const detail::RequestMessage& in, httplib::Request& out) {
  const std::string target(in.target());
  if (target != out.target) {
    out.target = target;
    out.path = target.substr(0, target.find('?'));
  }
  httplib::Headers headers;
  for (const auto& [name, value] : out.headers) {
    if (is_pseudo_header(name)) headers.emplace(name, value);
  }
  for (const auto& field : in) {
    headers.emplace(std::string(field.name_string()), std::string(field.value()));
  }
  out.headers = std::move(headers);
  out.body = in.body();
}

void from_httplib(httplib::Response& in, detail::ResponseMessage& out) {
  out.result(static_cast<unsigned>(in.status < 0 ? 200 : in.status));
  out.clear();
  out.extra.clear();
  for (const auto& [name, value] : in.headers) {
    if (!is_framing_header(name)) out.insert(name, value);
  }
  out.body() = std::move(in.body);
}

void to_httplib(detail::ResponseMessage& in, httplib::Response& out) {
  detail::flush_extra_fields(in);  // the fields the chain added (core/extra_fields.hpp)
  out.status = static_cast<int>(in.result_int());
  out.headers.clear();
  for (const auto& field : in) {
    const auto name = field.name_string();
    if (!is_framing_header(name))
      out.headers.emplace(std::string(name), std::string(field.value()));
  }
  out.body = std::move(in.body());
}

}  // namespace sluice::httplib_adapter
