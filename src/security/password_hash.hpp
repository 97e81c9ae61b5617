// PasswordHash — a PBKDF2-HMAC-SHA256 password hash (RFC 8018, NIST SP 800-132) in the text form
// of passlib's pbkdf2_sha256: `$pbkdf2-sha256$<iterations>$<salt>$<derived key>`, salt and key
// in base64 ('.' may stand for '+', padding optional). Verification compares in constant time.
//
//   auto h = PasswordHash::parse("$pbkdf2-sha256$600000$c2FsdHNhbHQ$...");  // nullopt if bad
//   bool ok = h && h->verify("s3cret");
//   std::string line = PasswordHash::make("s3cret", 600000).text();         // for tools, tests
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::security {

class PasswordHash {
 public:
  static constexpr int kMinIterations = 1000;

  // Parses the text form; on failure returns nullopt and says why in `error` (if given).
  static std::optional<PasswordHash> parse(std::string_view text, std::string* error = nullptr);
  // A new hash of `password` with a random 16-byte salt.
  static PasswordHash make(std::string_view password, int iterations);

  // A hash nobody's password matches, as costly to check as a real one with `iterations`
  // (made without running PBKDF2).
  static PasswordHash decoy(int iterations);

  bool verify(std::string_view password) const;
  std::string text() const;
  int iterations() const { return iterations_; }

 private:
  int iterations_ = 0;
  std::string salt_;
  std::string key_;  // the derived key, 16 to 64 bytes
};

}  // namespace sluice::security
