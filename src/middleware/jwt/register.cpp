#include <spdlog/spdlog.h>

#include "middleware/jwt/jwt_middleware.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

using security::JwkSet;
using security::WatchedFile;

WatchedFile<JwkSet>::Parsed parse_jwks(const std::string& text) {
  auto set = JwkSet::parse(text);
  if (auto* error = std::get_if<std::string>(&set)) return *error;
  return std::make_shared<const JwkSet>(std::get<JwkSet>(std::move(set)));
}

std::shared_ptr<Middleware> build(const MiddlewareSpec& spec, Settings& s) {
  prometheus::Registry* metrics = spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
  JwtConfig config;
  auto& policy = config.policy;
  policy.audiences = s.strings("audiences");
  policy.issuers = s.strings("issuers");
  policy.clock_skew = std::chrono::seconds(s.integer("clock_skew_s", 60, 0, 3600));
  policy.require_exp = s.boolean("require_exp", true);
  config.header = s.string("header", config.header);
  if (config.header.empty()) s.error("header", "must name a header");
  config.cookie = s.string("cookie");
  config.user_claim = s.string("user_claim", config.user_claim);
  if (config.user_claim.empty()) s.error("user_claim", "must name a claim");
  config.tier_claim = s.string("tier_claim");
  config.realm = s.string("realm", config.realm);
  if (config.realm.find_first_of("\"\\\r\n") != std::string::npos)
    s.error("realm", "must not contain quotes, backslashes or line breaks");
  config.allow_missing = s.boolean("allow_missing", false);
  config.forward_token = s.boolean("forward_token", true);
  config.identity = Identity::read(s);
  const auto interval = s.millis("reload_interval_ms", std::chrono::milliseconds(5000));
  if (interval.count() < 0) s.error("reload_interval_ms", "must be >= 0 (0: never re-read)");

  AuthCounters counters(
      metrics, "jwt", spec.name,
      {"allowed", "anonymous", "jwt_missing", "jwt_malformed", "jwt_unsupported_alg",
       "jwt_unknown_key", "jwt_bad_signature", "jwt_expired", "jwt_not_yet_valid",
       "jwt_wrong_audience", "jwt_wrong_issuer", "jwt_no_user"});
  const std::string file = s.string("jwks_file");
  if (file.empty()) {
    s.error("jwks_file", "is required: the path of a JWKS file ({\"keys\": [...]})");
    return nullptr;
  }
  auto report = [counters, name = spec.name](bool ok, const std::string& message) {
    counters.file_reloaded(ok);
    if (ok)
      spdlog::info("{}: reloaded keys from {}", name, message);
    else
      spdlog::warn("{}: keeps its previous keys, the changed file is refused: {}", name, message);
  };
  auto keys = WatchedFile<JwkSet>::open(file, parse_jwks, interval, clock, report);
  if (auto* error = std::get_if<std::string>(&keys)) {
    s.error("jwks_file", *error);
    return nullptr;
  }
  return std::make_shared<JwtMiddleware>(
      spec.name, std::move(config), std::get<std::shared_ptr<WatchedFile<JwkSet>>>(std::move(keys)),
      std::move(counters));
}

const MiddlewareRegistrar registrar("jwt", build);

}  // namespace
}  // namespace sluice::middleware
