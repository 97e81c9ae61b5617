// CredentialsTable — users and their password hashes from an htpasswd-like file, one
// `user:$pbkdf2-sha256$...[:tier]` per line ('#' comments and blank lines ignored), plus a small
// cache of recently verified passwords so that a client sending the same credentials on every
// request pays for PBKDF2 once per `cache_ttl`, not per request.
//
//   auto table = CredentialsTable::parse(text);            // shared_ptr or "line 3: ..." error
//   if (auto* e = table->find("alice"); e && table->check(*e, "alice", pw, now)) allow();
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "security/password_hash.hpp"
#include "sluice/clock.hpp"

namespace sluice::security {

struct Credential {
  PasswordHash hash;
  std::string tier;  // optional third field
};

class CredentialsTable {
 public:
  static std::variant<std::shared_ptr<const CredentialsTable>, std::string> parse(
      std::string_view text, std::chrono::milliseconds cache_ttl = std::chrono::seconds(60),
      std::size_t cache_max = 10000);

  const Credential* find(std::string_view user) const;
  std::size_t size() const { return users_.size(); }

  // True when `password` is the user's. A hit in the cache of recent successes skips PBKDF2.
  // `entry` null (unknown user) still spends the time of one hash, so that the answer's timing
  // does not tell which users exist.
  bool check(const Credential* entry, std::string_view user, std::string_view password,
             SteadyTime now) const;
  // True when a check of these credentials would be answered from the cache (no PBKDF2).
  bool cached(std::string_view user, std::string_view password, SteadyTime now) const;

 private:
  std::string cache_key(std::string_view user, std::string_view password) const;

  std::map<std::string, Credential, std::less<>> users_;
  PasswordHash decoy_;  // as costly as the table's most costly hash
  std::chrono::milliseconds cache_ttl_{0};
  std::size_t cache_max_ = 0;
  std::string cache_secret_;  // per table: cache keys are HMACs, never passwords
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, SteadyTime> verified_;  // key -> valid until
};

}  // namespace sluice::security
