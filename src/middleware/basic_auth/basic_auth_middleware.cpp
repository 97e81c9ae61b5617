#include "middleware/basic_auth/basic_auth_middleware.hpp"

#include <strings.h>

#include <boost/asio/post.hpp>

#include "core/http_text.hpp"
#include "security/base64.hpp"

namespace sluice::middleware {

// A password check in flight on the pool. The request's side (resume, cancelled) is only touched
// on the request's worker thread: on_cancel runs there, and the pool hands the result back there
// through Exchange::post.
struct BasicAuthMiddleware::Check {
  Resume resume;
  bool cancelled = false;
};

BasicAuthMiddleware::BasicAuthMiddleware(
    std::string name, BasicAuthConfig config,
    std::shared_ptr<security::WatchedFile<security::CredentialsTable>> users, AuthCounters counters,
    const Clock& clock, std::shared_ptr<boost::asio::thread_pool> pool)
    : name_(std::move(name)),
      config_(std::move(config)),
      users_(std::move(users)),
      counters_(std::move(counters)),
      clock_(clock),
      pool_(std::move(pool)) {}

Decision BasicAuthMiddleware::refuse(Exchange& ex, std::string_view detail,
                                     std::string_view message) const {
  counters_.count(detail);
  ex.answer_error(401, detail, message);
  ex.response().set_header("WWW-Authenticate",
                           "Basic realm=\"" + config_.realm + "\", charset=\"UTF-8\"");
  return Decision::respond();
}

Decision BasicAuthMiddleware::finish(Exchange& ex, const std::string& user, const std::string& tier,
                                     bool ok) const {
  if (!ok) return refuse(ex, "basic_auth_invalid", "wrong user name or password");
  if (!config_.forward_credentials) ex.request().remove_header("Authorization");
  config_.identity.set(ex, user, tier);
  counters_.count("allowed");
  return Decision::next();
}

Decision BasicAuthMiddleware::pre_handle(Exchange& ex) {
  config_.identity.strip(ex);
  std::string_view value = ex.request().header("Authorization");
  if (value.size() <= 6 || strncasecmp(value.data(), "Basic ", 6) != 0)
    return refuse(ex, "basic_auth_missing", "credentials are required");
  auto decoded = security::decode_base64(sluice::detail::trim_ows(value.substr(6)));
  const auto colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos)
    return refuse(ex, "basic_auth_invalid", "the credentials are not base64 of user:password");
  std::string user = decoded->substr(0, colon);
  std::string password = decoded->substr(colon + 1);

  auto table = users_->current_shared();
  const security::Credential* entry = table->find(user);
  const std::string tier = entry != nullptr ? entry->tier : std::string();
  const SteadyTime now = clock_.now();
  if (!pool_ || (entry != nullptr && table->cached(user, password, now)))
    return finish(ex, user, tier, table->check(entry, user, password, now));

  // Wrong passwords are never cached, so a guessing client could queue PBKDF2 work without end:
  // the queue is bounded, and what does not fit is told to come back.
  if (pending_->fetch_add(1, std::memory_order_relaxed) >= config_.max_pending) {
    pending_->fetch_sub(1, std::memory_order_relaxed);
    counters_.count("basic_auth_busy");
    ex.answer_error(503, "basic_auth_busy", "too many password checks in progress");
    ex.response().set_header("Retry-After", "1");
    return Decision::respond();
  }
  auto check = std::make_shared<Check>();
  check->resume = ex.defer();
  ex.on_cancel([check] { check->cancelled = true; });
  // The pool's part never touches the middleware, and of the exchange only Exchange::post (its
  // host, kept alive by the Resume in `check`): it may run after a cancelled request and a reload.
  boost::asio::post(*pool_, [this, &ex, check, pending = pending_, table = std::move(table), entry,
                             now, user = std::move(user), password = std::move(password), tier] {
    const bool ok = table->check(entry, user, password, now);
    pending->fetch_sub(1, std::memory_order_relaxed);
    // Back to the request's worker: the exchange is only touched there. `check` keeps the
    // Resume, and with it the request's host (which owns the exchange), alive until then.
    ex.post([this, &ex, check, ok, user, tier] {
      // Cancelled: the request is gone, and the middleware may be too. Otherwise the request
      // still holds its chain snapshot, and with it this middleware.
      if (check->cancelled) return;
      // Written into the exchange before the resume, on the request's own thread.
      const Decision d = finish(ex, user, tier, ok);
      check->resume(d);
    });
  });
  return Decision::wait();
}

}  // namespace sluice::middleware
