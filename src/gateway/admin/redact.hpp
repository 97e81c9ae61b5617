// Secrets out of what the admin API shows: GET /config returns the loaded config with every
// secret value replaced by "<redacted>".
//
//   nlohmann::json config = {{"admin", {{"token", "s3cret"}}}};
//   redact_secrets(config);  // config["admin"]["token"] == "<redacted>"
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace sluice::gateway {

inline constexpr std::string_view kRedacted = "<redacted>";

// True for a config key or header name whose value is a secret: tokens, passwords, secrets,
// credentials, API keys, authorization and cookie headers, private keys, and every `*_env`
// (the name of the environment variable that holds a secret tells where to look for it).
bool is_secret_key(std::string_view key);

// Replaces, at any depth, the scalar values (and the scalars of arrays) held under secret keys.
void redact_secrets(nlohmann::json& value);

}  // namespace sluice::gateway
