// basic_auth — HTTP Basic authentication (RFC 7617) against a file of PBKDF2-SHA256 password
// hashes, re-read when it changes. The user (and the optional tier of its line) go into the
// Context; a missing or wrong password is a 401 with WWW-Authenticate: Basic realm="...".
// PBKDF2 is slow on purpose: it runs on a small hashing thread pool, never on the worker, and a
// password verified once is remembered for cache_ttl_ms (keyed by an HMAC, not the password).
//
//   - type: basic_auth
//     users_file: /etc/sluice/users.txt      # alice:$pbkdf2-sha256$600000$...$...:vip
//     realm: internal
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <string>

#include "middleware/common/auth_metrics.hpp"
#include "middleware/common/identity.hpp"
#include "security/credentials_table.hpp"
#include "security/watched_file.hpp"
#include "sluice/exchange.hpp"

namespace sluice::middleware {

struct BasicAuthConfig {
  std::string realm = "sluice";
  bool forward_credentials = false;  // true: the Authorization header reaches the upstream
  int verify_threads = 1;            // the hashing pool's threads; 0: on the worker (tests)
  int max_pending = 64;              // checks queued for the pool beyond this: 503
  Identity identity;
};

class BasicAuthMiddleware final : public Middleware {
 public:
  BasicAuthMiddleware(std::string name, BasicAuthConfig config,
                      std::shared_ptr<security::WatchedFile<security::CredentialsTable>> users,
                      AuthCounters counters, const Clock& clock,
                      std::shared_ptr<boost::asio::thread_pool> pool);

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "basic_auth"; }
  Decision pre_handle(Exchange& ex) override;
  // Skipped (guard or rollout): the upstream still never sees a client's identity headers.
  void on_skipped(Exchange& ex) override { config_.identity.strip(ex); }

 private:
  struct Check;
  Decision refuse(Exchange& ex, std::string_view detail, std::string_view message) const;
  // After the password check; on the request's worker thread.
  Decision finish(Exchange& ex, const std::string& user, const std::string& tier, bool ok) const;

  std::string name_;
  BasicAuthConfig config_;
  std::shared_ptr<security::WatchedFile<security::CredentialsTable>> users_;
  AuthCounters counters_;
  const Clock& clock_;
  // Checks queued or running on the pool. Shared with them: a check never touches the middleware,
  // which a reload may destroy while a cancelled request's check is still queued.
  std::shared_ptr<std::atomic<int>> pending_ = std::make_shared<std::atomic<int>>(0);
  // Null when verify_threads is 0. Shared by the gateway's basic_auth middlewares with the same
  // thread count and kept for the process's life, so a reload never waits for a pool to drain.
  std::shared_ptr<boost::asio::thread_pool> pool_;
};

}  // namespace sluice::middleware
