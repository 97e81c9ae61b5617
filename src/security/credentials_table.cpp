#include "security/credentials_table.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

namespace sluice::security {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::variant<std::shared_ptr<const CredentialsTable>, std::string> CredentialsTable::parse(
    std::string_view text, std::chrono::milliseconds cache_ttl, std::size_t cache_max) {
  auto table = std::make_shared<CredentialsTable>();
  int line_no = 0;
  int max_iterations = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    // user:hash[:tier] — a user name has no ':' (RFC 7617 section 2), a hash has none either.
    const auto c1 = line.find(':');
    if (c1 == std::string_view::npos || c1 == 0) return where + "expected user:hash[:tier]";
    const auto c2 = line.find(':', c1 + 1);
    const std::string user(line.substr(0, c1));
    const auto hash_text =
        line.substr(c1 + 1, c2 == std::string_view::npos ? std::string_view::npos : c2 - c1 - 1);
    std::string error;
    auto hash = PasswordHash::parse(hash_text, &error);
    if (!hash) return where + "user \"" + user + "\": " + error;
    Credential entry{std::move(*hash), std::string()};
    if (c2 != std::string_view::npos) entry.tier = std::string(trim(line.substr(c2 + 1)));
    max_iterations = std::max(max_iterations, entry.hash.iterations());
    if (!table->users_.emplace(user, std::move(entry)).second)
      return where + "user \"" + user + "\" appears twice";
  }
  if (table->users_.empty()) return std::string("no users (lines of user:$pbkdf2-sha256$...)");
  table->decoy_ = PasswordHash::decoy(max_iterations);
  table->cache_ttl_ = cache_ttl;
  table->cache_max_ = cache_max;
  table->cache_secret_.resize(32);
  RAND_bytes(reinterpret_cast<unsigned char*>(table->cache_secret_.data()), 32);
  return std::shared_ptr<const CredentialsTable>(std::move(table));
}

const Credential* CredentialsTable::find(std::string_view user) const {
  auto it = users_.find(user);
  return it == users_.end() ? nullptr : &it->second;
}

std::string CredentialsTable::cache_key(std::string_view user, std::string_view password) const {
  std::string input(user);
  input.push_back('\0');
  input.append(password);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), cache_secret_.data(), static_cast<int>(cache_secret_.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

bool CredentialsTable::cached(std::string_view user, std::string_view password,
                              SteadyTime now) const {
  if (cache_ttl_.count() <= 0) return false;
  const std::string key = cache_key(user, password);
  std::lock_guard lock(cache_mutex_);
  auto it = verified_.find(key);
  if (it == verified_.end()) return false;
  if (it->second <= now) {
    verified_.erase(it);
    return false;
  }
  return true;
}

bool CredentialsTable::check(const Credential* entry, std::string_view user,
                             std::string_view password, SteadyTime now) const {
  if (entry == nullptr) {
    (void)decoy_.verify(password);
    return false;
  }
  if (cached(user, password, now)) return true;
  if (!entry->hash.verify(password)) return false;
  if (cache_ttl_.count() > 0) {
    const std::string key = cache_key(user, password);
    std::lock_guard lock(cache_mutex_);
    if (verified_.size() >= cache_max_) {
      // Full: drop what has expired, or everything if nothing has (a bounded, rare cost).
      std::erase_if(verified_, [now](const auto& kv) { return kv.second <= now; });
      if (verified_.size() >= cache_max_) verified_.clear();
    }
    verified_[key] = now + cache_ttl_;
  }
  return true;
}

}  // namespace sluice::security
