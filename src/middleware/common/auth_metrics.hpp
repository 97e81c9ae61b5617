// AuthCounters — the counters every authentication middleware keeps:
// sluice_auth_decisions_total{type,middleware,result} (result: "allowed" or the stable detail of
// a refusal) and sluice_auth_file_reloads_total{type,middleware,result="ok"|"error"} for the
// files they watch. The one declaration of the auth types' stats (jwt, basic_auth, ext_auth):
// one family for all of them, told apart by `type`, so a dashboard sums every refusal at once
// (docs/OBSERVABILITY.md, "Naming"). Counters are made once at build time; the request path only
// increments.
//
//   AuthCounters counters(metrics, "jwt", "api-jwt", {"allowed", "jwt_missing", "jwt_expired"});
//   counters.count("jwt_expired");
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace prometheus {
class Counter;
class Registry;
}  // namespace prometheus

namespace sluice::middleware {

class AuthCounters {
 public:
  AuthCounters() = default;
  // `metrics` may be null (no counting).
  AuthCounters(prometheus::Registry* metrics, const std::string& type,
               const std::string& middleware, std::initializer_list<std::string_view> results);
  void count(std::string_view result) const;
  void file_reloaded(bool ok) const;

 private:
  std::vector<std::pair<std::string, prometheus::Counter*>> decisions_;
  prometheus::Counter* reload_ok_ = nullptr;
  prometheus::Counter* reload_error_ = nullptr;
};

}  // namespace sluice::middleware
