#include "gateway/handlers/respond_handler.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "sluice/extension/json_answer.hpp"

namespace sluice::gateway {

RespondHandler::RespondHandler(int status, std::vector<std::pair<std::string, std::string>> headers,
                               std::string body)
    : status_(status), body_(std::move(body)), content_type_("text/plain; charset=utf-8") {
  for (auto& [name, value] : headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "content-type") {
      content_type_ = value;
    } else {
      headers_.emplace_back(name, value);
    }
  }
}

Decision RespondHandler::handle(Exchange& ex) {
  Response& r = ex.response();
  r.set_status(status_);
  r.set_body(body_, content_type_);
  for (const auto& [name, value] : headers_)
    r.set_header(name, value);
  return Decision::respond();
}

Decision EchoHandler::handle(Exchange& ex) {
  const Request& req = ex.request();
  nlohmann::json headers = nlohmann::json::object();
  req.visit_headers([&](std::string_view name, std::string_view value) {
    std::string key(name);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto& slot = headers[key];
    if (slot.is_null()) slot = nlohmann::json::array();
    slot.push_back(std::string(value));
  });
  nlohmann::json body = {
      {"method", req.method()},
      {"path", req.path()},
      {"query", req.query()},
      {"headers", headers},
      {"body", req.body()},
      {"client_ip", ex.context().client_ip()},
      {"peer_ip", ex.context().peer_ip()},
      {"request_id", ex.context().request_id()},
      {"route", ex.route() ? ex.route()->name : std::string()},
  };
  return extension::answer_json(ex, 200, body, extension::JsonLayout::kCompact);
}

}  // namespace sluice::gateway
