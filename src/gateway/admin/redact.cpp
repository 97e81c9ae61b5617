#include "gateway/admin/redact.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace sluice::gateway {

bool is_secret_key(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::replace(k.begin(), k.end(), '-', '_');
  // Substrings: a header name ("X-Api-Token", "Proxy-Authorization") or a key of a future
  // section ("client_secret", "redis_password") is caught without being listed.
  static constexpr std::array<std::string_view, 10> kParts = {
      "token",      "secret", "password", "passwd", "authorization",
      "credential", "cookie", "api_key",  "apikey", "private_key"};
  for (auto part : kParts) {
    if (k.find(part) != std::string::npos) return true;
  }
  return k.size() > 4 && k.ends_with("_env");
}

namespace {
void redact_value(nlohmann::json& v) {
  if (v.is_array()) {
    for (auto& item : v)
      redact_value(item);
  } else if (v.is_object()) {  // a map under a secret key (`credentials: {alice: ...}`): all of it
    for (auto& item : v)
      redact_value(item);
  } else if (!v.is_null()) {
    v = std::string(kRedacted);
  }
}
}  // namespace

void redact_secrets(nlohmann::json& value) {
  if (value.is_array()) {
    for (auto& item : value)
      redact_secrets(item);
    return;
  }
  if (!value.is_object()) return;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (is_secret_key(it.key()))
      redact_value(it.value());
    else
      redact_secrets(it.value());
  }
}

}  // namespace sluice::gateway
