#include "security/password_hash.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <stdexcept>

#include "security/base64.hpp"

namespace sluice::security {

namespace {

constexpr std::string_view kPrefix = "$pbkdf2-sha256$";

std::string derive(std::string_view password, std::string_view salt, int iterations,
                   std::size_t length) {
  std::string out(length, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(length),
                        reinterpret_cast<unsigned char*>(out.data())) != 1)
    return {};
  return out;
}

// passlib's "adapted base64" writes '.' for '+'; both spellings are read.
std::optional<std::string> decode_field(std::string_view text) {
  std::string standard(text);
  for (char& c : standard)
    if (c == '.') c = '+';
  return decode_base64(standard);
}

std::string encode_field(std::string_view bytes) {
  std::string s = encode_base64(bytes);
  while (!s.empty() && s.back() == '=')
    s.pop_back();
  for (char& c : s)
    if (c == '+') c = '.';
  return s;
}

std::optional<PasswordHash> fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<PasswordHash> PasswordHash::parse(std::string_view text, std::string* error) {
  if (!text.starts_with(kPrefix))
    return fail(error,
                "not a $pbkdf2-sha256$ hash (other schemes such as bcrypt, MD5-crypt or "
                "{SHA} are not accepted)");
  text.remove_prefix(kPrefix.size());
  const auto d1 = text.find('$');
  const auto d2 = d1 == std::string_view::npos ? d1 : text.find('$', d1 + 1);
  if (d2 == std::string_view::npos || text.find('$', d2 + 1) != std::string_view::npos)
    return fail(error, "expected $pbkdf2-sha256$<iterations>$<salt>$<key>");
  PasswordHash h;
  const auto iter = text.substr(0, d1);
  auto [end, ec] = std::from_chars(iter.data(), iter.data() + iter.size(), h.iterations_);
  if (ec != std::errc() || end != iter.data() + iter.size())
    return fail(error, "the iteration count is not a number");
  if (h.iterations_ < kMinIterations)
    return fail(error, "fewer than " + std::to_string(kMinIterations) + " iterations is too weak");
  auto salt = decode_field(text.substr(d1 + 1, d2 - d1 - 1));
  auto key = decode_field(text.substr(d2 + 1));
  if (!salt || salt->size() < 8) return fail(error, "the salt must be base64 of at least 8 bytes");
  if (!key || key->size() < 16 || key->size() > 64)
    return fail(error, "the key must be base64 of 16 to 64 bytes");
  h.salt_ = std::move(*salt);
  h.key_ = std::move(*key);
  return h;
}

PasswordHash PasswordHash::make(std::string_view password, int iterations) {
  PasswordHash h;
  h.iterations_ = iterations;
  h.salt_.resize(16);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(h.salt_.data()), 16) != 1)
    throw std::runtime_error("RAND_bytes failed");
  h.key_ = derive(password, h.salt_, iterations, 32);
  return h;
}

PasswordHash PasswordHash::decoy(int iterations) {
  PasswordHash h;
  h.iterations_ = iterations;
  h.salt_.resize(16);
  h.key_.resize(32);
  RAND_bytes(reinterpret_cast<unsigned char*>(h.salt_.data()), 16);
  RAND_bytes(reinterpret_cast<unsigned char*>(h.key_.data()), 32);
  return h;
}

bool PasswordHash::verify(std::string_view password) const {
  const std::string got = derive(password, salt_, iterations_, key_.size());
  return !got.empty() && CRYPTO_memcmp(got.data(), key_.data(), key_.size()) == 0;
}

std::string PasswordHash::text() const {
  return std::string(kPrefix) + std::to_string(iterations_) + "$" + encode_field(salt_) + "$" +
         encode_field(key_);
}

}  // namespace sluice::security
