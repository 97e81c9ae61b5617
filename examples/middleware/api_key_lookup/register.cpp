// examples/middleware/api_key_lookup/register.cpp
// api_key_lookup from a config item, with its stats and an admin endpoint. Stats go to the
// host's metrics registry (GatewayServices, per process) under the middleware's type;
// `GET /api_key_lookup` on the admin listener shows each instance's counts.
//
//   - type: api_key_lookup
//     keys: { k-123: mobile-app }   # the directory here is a table; yours would call out
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <map>
#include <nlohmann/json.hpp>

#include "api_key_lookup/api_key_lookup.hpp"
#include "sluice/extension/admin_endpoint.hpp"
#include "sluice/extension/json_answer.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::examples {
namespace {

// Answers at once from a table: the "or at once, from a cache" case of KeyDirectory.
class TableDirectory final : public KeyDirectory {
 public:
  explicit TableDirectory(std::map<std::string, std::string> keys) : keys_(std::move(keys)) {}
  void lookup(std::string key, Done done) override {
    auto it = keys_.find(key);
    done(it == keys_.end() ? std::nullopt : std::optional<std::string>(it->second));
  }

 private:
  const std::map<std::string, std::string> keys_;
};

// One counter family for every instance, labelled by route and name; prometheus-cpp hands back
// the same family and series when a reload registers them again.
ApiKeyLookupStats stats_for(const MiddlewareSpec& spec) {
  if (spec.services == nullptr || !spec.services->metrics) return {};
  auto& family = prometheus::BuildCounter()
                     .Name("sluice_api_key_lookup_total")
                     .Help("api_key_lookup decisions, by result")
                     .Register(*spec.services->metrics);
  auto series = [&](const char* result) {
    return &family.Add({{"route", spec.route}, {"middleware", spec.name}, {"result", result}});
  };
  return {series("known"), series("unknown"), series("missing")};
}

const MiddlewareRegistrar registrar("api_key_lookup", [](const MiddlewareSpec& spec, Settings& s) {
  std::map<std::string, std::string> keys;
  for (auto& [key, client] : s.string_map("keys"))
    keys.emplace(key, client);
  if (keys.empty()) s.error("keys", "at least one key is required");
  return std::make_shared<ApiKeyLookupMiddleware>(
      spec.name, std::make_shared<TableDirectory>(std::move(keys)), stats_for(spec));
});

// GET /api_key_lookup: {"middlewares":[{"route":"api","name":"keys","known":3,...}]}
bool admin(Exchange& ex, extension::AdminView& host) {
  if (ex.request().path() != "/api_key_lookup") return false;  // not ours: the next endpoint
  const auto count = [](prometheus::Counter* c) { return c != nullptr ? c->Value() : 0.0; };
  nlohmann::json list = nlohmann::json::array();
  for (const auto& route : host.routes()) {
    for (const auto& entry : route.chain->current()->entries()) {
      const auto* m = dynamic_cast<const ApiKeyLookupMiddleware*>(entry.middleware.get());
      if (m == nullptr) continue;
      list.push_back({{"route", route.name},
                      {"name", std::string(m->name())},
                      {"known", count(m->stats().known)},
                      {"unknown", count(m->stats().unknown)},
                      {"missing", count(m->stats().missing)}});
    }
  }
  extension::answer_json(ex, 200, {{"middlewares", list}});
  return true;
}
const extension::AdminEndpointRegistrar endpoint({"/api_key_lookup", admin});

}  // namespace
}  // namespace sluice::examples
