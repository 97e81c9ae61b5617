#include "middleware/jwt/jwt_middleware.hpp"

#include <strings.h>

#include "core/http_text.hpp"

namespace sluice::middleware {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or empty.
std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = sluice::detail::trim_ows(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
  }
  return {};
}

// The Cookie header without cookie `name` ("a=1; session=t; b=2" -> "a=1; b=2").
std::string without_cookie(std::string_view header, std::string_view name) {
  std::string out;
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = sluice::detail::trim_ows(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const auto eq = pair.find('=');
    if (pair.empty() || (eq != std::string_view::npos && pair.substr(0, eq) == name)) continue;
    out.append(out.empty() ? "" : "; ").append(pair);
  }
  return out;
}

// A claim as a string: strings as they are, integers in decimal (numeric user ids), else empty.
std::string claim_text(const nlohmann::json& claims, const std::string& name) {
  auto it = claims.find(name);
  if (it == claims.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  return {};
}

}  // namespace

std::string_view JwtMiddleware::find_token(const Request& req) const {
  std::string_view value = req.header(config_.header);
  if (iequals(config_.header, "Authorization")) {
    // RFC 6750 section 2.1: "Bearer" (any case), one space, the token. Another scheme (Basic)
    // is not a bearer token: treated as absent.
    if (value.size() > 7 && iequals(value.substr(0, 7), "Bearer ")) {
      value = sluice::detail::trim_ows(value.substr(7));
    } else {
      value = {};
    }
  } else {
    value = sluice::detail::trim_ows(value);
  }
  if (value.empty() && !config_.cookie.empty())
    value = cookie_value(req.header("Cookie"), config_.cookie);
  return value;
}

Decision JwtMiddleware::refuse(Exchange& ex, std::string_view detail,
                               std::string_view message) const {
  counters_.count(detail);
  // RFC 6750 section 3.1: no error code when the request carried no token at all.
  std::string challenge = "Bearer realm=\"" + config_.realm + "\"";
  if (detail != "jwt_missing") challenge += ", error=\"invalid_token\"";
  ex.answer_error(401, detail, message);
  ex.response().set_header("WWW-Authenticate", challenge);
  return Decision::respond();
}

void JwtMiddleware::drop_token(Exchange& ex) const {
  if (config_.forward_token) return;
  ex.request().remove_header(config_.header);
  // A token sent as a cookie must not reach the upstream either; the other cookies do.
  if (config_.cookie.empty() || !ex.request().has_header("Cookie")) return;
  const std::string rest = without_cookie(ex.request().header("Cookie"), config_.cookie);
  if (rest.empty()) {
    ex.request().remove_header("Cookie");
  } else {
    ex.request().set_header("Cookie", rest);
  }
}

Decision JwtMiddleware::pre_handle(Exchange& ex) {
  config_.identity.strip(ex);
  const std::string_view token = find_token(ex.request());
  if (token.empty()) {
    if (config_.allow_missing) {
      counters_.count("anonymous");
      return Decision::next();
    }
    return refuse(ex, "jwt_missing", "a bearer token is required");
  }
  auto result = [&] {
    auto keys = keys_->current();
    return security::verify_jwt(token, *keys, config_.policy, ex.context().start_wall());
  }();
  if (result.error != security::JwtError::kNone)
    return refuse(ex, security::jwt_error_detail(result.error), result.message);
  std::string user = claim_text(result.claims, config_.user_claim);
  if (user.empty())
    return refuse(ex, "jwt_no_user", "the token has no \"" + config_.user_claim + "\" claim");
  std::string tier =
      config_.tier_claim.empty() ? std::string() : claim_text(result.claims, config_.tier_claim);
  drop_token(ex);
  config_.identity.set(ex, std::move(user), std::move(tier));
  counters_.count("allowed");
  return Decision::next();
}

}  // namespace sluice::middleware
