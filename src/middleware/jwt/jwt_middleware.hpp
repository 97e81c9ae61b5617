// jwt — accepts a request only with a valid JSON Web Token (HS256, RS256 or ES256, keys from a
// JWKS file re-read when it changes) and records who it names: the user (claim `sub` by default)
// and the tier (a claim of your choice) go into the Context for rate_limit keys, fallback rules,
// logs and spans. A missing or refused token is a 401 with WWW-Authenticate: Bearer.
//
//   - type: jwt
//     jwks_file: /etc/sluice/jwks.json
//     issuers: [https://idp.example.com]
//     audiences: [orders-api]
//     tier_claim: tier
#pragma once

#include <memory>
#include <string>

#include "middleware/common/auth_metrics.hpp"
#include "middleware/common/identity.hpp"
#include "security/jwk_set.hpp"
#include "security/jwt_verifier.hpp"
#include "security/watched_file.hpp"
#include "sluice/exchange.hpp"

namespace sluice::middleware {

struct JwtConfig {
  security::JwtPolicy policy;
  std::string header = "Authorization";  // "Bearer <token>" there; the raw token in any other
  std::string cookie;                    // tried when the header carries no token (empty: never)
  std::string user_claim = "sub";
  std::string tier_claim;  // empty: no tier
  std::string realm = "sluice";
  bool allow_missing = false;  // no token: pass without a user (a bad token is still a 401)
  bool forward_token = true;   // false: the token does not reach the upstream
  Identity identity;
};

class JwtMiddleware final : public Middleware {
 public:
  JwtMiddleware(std::string name, JwtConfig config,
                std::shared_ptr<security::WatchedFile<security::JwkSet>> keys,
                AuthCounters counters)
      : name_(std::move(name)),
        config_(std::move(config)),
        keys_(std::move(keys)),
        counters_(std::move(counters)) {}

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "jwt"; }
  Decision pre_handle(Exchange& ex) override;
  // Skipped (guard or rollout): the upstream still never sees a client's identity headers.
  void on_skipped(Exchange& ex) override { config_.identity.strip(ex); }

  // The token of a request ("" when none): the header first, then the cookie.
  std::string_view find_token(const Request& req) const;

 private:
  Decision refuse(Exchange& ex, std::string_view detail, std::string_view message) const;
  void drop_token(Exchange& ex) const;

  std::string name_;
  JwtConfig config_;
  std::shared_ptr<security::WatchedFile<security::JwkSet>> keys_;
  AuthCounters counters_;
};

}  // namespace sluice::middleware
