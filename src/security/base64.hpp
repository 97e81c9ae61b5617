// Base64 decoding for credentials: base64url without padding (JWS, RFC 7515 §2) and standard
// base64 with optional padding (HTTP Basic, RFC 7617; password hashes).
//
//   auto bytes = decode_base64url("eyJhbGciOiJIUzI1NiJ9");   // std::nullopt on a bad character
//   auto pair = decode_base64("dXNlcjpwYXNz");                // "user:pass"
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::security {

// The URL-safe alphabet ('-', '_'); '=' padding is refused, as JWS forbids it.
std::optional<std::string> decode_base64url(std::string_view text);
// The standard alphabet ('+', '/'); trailing '=' padding is optional.
std::optional<std::string> decode_base64(std::string_view text);
std::string encode_base64url(std::string_view bytes);
std::string encode_base64(std::string_view bytes);

}  // namespace sluice::security
