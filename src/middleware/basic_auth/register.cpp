#include <spdlog/spdlog.h>

#include <map>

#include "middleware/basic_auth/basic_auth_middleware.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

using security::CredentialsTable;
using security::WatchedFile;

// The hashing pools of the gateway, one per thread count, living as long as the process
// (GatewayServices::shared): a reload that replaces a basic_auth middleware never has to wait for
// a pool to drain. Config loads are serialized, so the map needs no lock.
struct HashPools {
  std::map<int, std::shared_ptr<boost::asio::thread_pool>> by_threads;
};

std::shared_ptr<boost::asio::thread_pool> hash_pool(GatewayServices* services, int threads) {
  if (threads <= 0) return nullptr;
  if (services == nullptr) return std::make_shared<boost::asio::thread_pool>(threads);
  auto& slot = services->shared.get_or_emplace<HashPools>().by_threads[threads];
  if (!slot) slot = std::make_shared<boost::asio::thread_pool>(threads);
  return slot;
}

std::shared_ptr<Middleware> build(const MiddlewareSpec& spec, Settings& s) {
  prometheus::Registry* metrics = spec.services != nullptr ? spec.services->metrics.get() : nullptr;
  const Clock& clock = spec.services != nullptr ? *spec.services->clock : system_steady_clock();
  BasicAuthConfig config;
  config.realm = s.string("realm", config.realm);
  if (config.realm.empty() || config.realm.find_first_of("\"\\\r\n") != std::string::npos)
    s.error("realm", "must be non-empty, without quotes, backslashes or line breaks");
  config.forward_credentials = s.boolean("forward_credentials", false);
  config.verify_threads = static_cast<int>(s.integer("verify_threads", 1, 0, 64));
  config.max_pending = static_cast<int>(s.integer("max_pending", 64, 1, 1'000'000));
  config.identity = Identity::read(s);
  const auto cache_ttl = s.millis("cache_ttl_ms", std::chrono::milliseconds(60'000));
  const auto cache_max = s.integer("cache_max", 10'000, 1, 10'000'000);
  const auto interval = s.millis("reload_interval_ms", std::chrono::milliseconds(5000));
  if (interval.count() < 0) s.error("reload_interval_ms", "must be >= 0 (0: never re-read)");
  if (cache_ttl.count() < 0) s.error("cache_ttl_ms", "must be >= 0 (0: no cache)");
  if (cache_ttl.count() == 0 && s.has("cache_max"))
    s.error("cache_max", "has no effect with cache_ttl_ms: 0 (no cache)");

  AuthCounters counters(metrics, "basic_auth", spec.name,
                        {"allowed", "basic_auth_missing", "basic_auth_invalid", "basic_auth_busy"});
  const std::string file = s.string("users_file");
  if (file.empty()) {
    s.error("users_file", "is required: a file of user:$pbkdf2-sha256$... lines");
    return nullptr;
  }
  auto parse = [cache_ttl,
                cache_max](const std::string& text) -> WatchedFile<CredentialsTable>::Parsed {
    auto table = CredentialsTable::parse(text, cache_ttl, static_cast<std::size_t>(cache_max));
    if (auto* error = std::get_if<std::string>(&table)) return *error;
    return std::get<std::shared_ptr<const CredentialsTable>>(std::move(table));
  };
  auto report = [counters, name = spec.name](bool ok, const std::string& message) {
    counters.file_reloaded(ok);
    if (ok)
      spdlog::info("{}: reloaded users from {}", name, message);
    else
      spdlog::warn("{}: keeps its previous users, the changed file is refused: {}", name, message);
  };
  auto users = WatchedFile<CredentialsTable>::open(file, parse, interval, clock, report);
  if (auto* error = std::get_if<std::string>(&users)) {
    s.error("users_file", *error);
    return nullptr;
  }
  auto pool = hash_pool(spec.services, config.verify_threads);
  return std::make_shared<BasicAuthMiddleware>(
      spec.name, std::move(config),
      std::get<std::shared_ptr<WatchedFile<CredentialsTable>>>(std::move(users)),
      std::move(counters), clock, std::move(pool));
}

const MiddlewareRegistrar registrar("basic_auth", build);

}  // namespace
}  // namespace sluice::middleware
