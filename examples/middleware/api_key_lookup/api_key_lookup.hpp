// examples/middleware/api_key_lookup/api_key_lookup.hpp
// api_key_lookup — answers 401 unless a key directory (a remote service, slow) knows the
// request's X-Api-Key; tells the upstream which client called (X-Client) and records it as the
// request's user. The worker serves other requests while the directory looks the key up.
//
//   auto directory = std::make_shared<MyDirectory>();   // your client of the key service
//   chain->use(std::make_shared<ApiKeyLookupMiddleware>("keys", directory));
//
// register.cpp builds it from a config item, with its stats and an admin endpoint.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sluice/exchange.hpp"

namespace prometheus {
class Counter;
}

namespace sluice::examples {

// What the middleware counts (register.cpp makes the series); null counts nothing.
struct ApiKeyLookupStats {
  prometheus::Counter* known = nullptr;    // the directory knew the key
  prometheus::Counter* unknown = nullptr;  // it did not: 401
  prometheus::Counter* missing = nullptr;  // no X-Api-Key: 401 without a lookup
};

// The service that knows the keys. lookup() returns at once and calls `done` exactly once,
// later and on any thread (or at once, from a cache), with the client's name, or nothing when
// the key is unknown.
class KeyDirectory {
 public:
  using Done = std::function<void(std::optional<std::string> client)>;
  virtual ~KeyDirectory() = default;
  virtual void lookup(std::string key, Done done) = 0;
};

class ApiKeyLookupMiddleware final : public Middleware {
 public:
  ApiKeyLookupMiddleware(std::string name, std::shared_ptr<KeyDirectory> directory,
                         ApiKeyLookupStats stats = {})
      : name_(std::move(name)), directory_(std::move(directory)), stats_(stats) {}
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "api_key_lookup"; }
  Decision pre_handle(Exchange& ex) override;
  const ApiKeyLookupStats& stats() const { return stats_; }

 private:
  std::string name_;
  std::shared_ptr<KeyDirectory> directory_;  // thread-safe: every worker calls it
  ApiKeyLookupStats stats_;                  // counters are atomic: any thread may count
};

}  // namespace sluice::examples
