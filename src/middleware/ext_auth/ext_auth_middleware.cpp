#include "middleware/ext_auth/ext_auth_middleware.hpp"

#include <strings.h>

#include <algorithm>

#include "server/worker_pool.hpp"

namespace sluice::middleware {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view header_of(const upstream::DetachedResult& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (iequals(n, name)) return v;
  return {};
}

}  // namespace

// The check in flight. Everything here runs on the request's worker thread: the call completes
// on that worker's io_context, and on_cancel runs there too.
struct ExtAuthMiddleware::Call {
  Resume resume;
  bool cancelled = false;
  std::function<void()> abort;  // aborts the call in flight
};

upstream::OutgoingRequest ExtAuthMiddleware::check_request(const Exchange& ex) const {
  const Request& req = ex.request();
  upstream::OutgoingRequest out;
  out.target = config_.path;
  out.headers.emplace_back("X-Forwarded-Method", std::string(req.method()));
  out.headers.emplace_back("X-Forwarded-Uri", std::string(req.target()));
  if (auto host = req.header("Host"); !host.empty())
    out.headers.emplace_back("X-Forwarded-Host", std::string(host));
  if (auto ip = ex.context().client_ip(); !ip.empty())
    out.headers.emplace_back("X-Forwarded-For", std::string(ip));
  if (auto id = ex.context().request_id(); !id.empty())
    out.headers.emplace_back("X-Request-Id", std::string(id));
  for (const auto& name : config_.request_headers) {
    if (req.has_header(name)) out.headers.emplace_back(name, std::string(req.header(name)));
  }
  return out;
}

Decision ExtAuthMiddleware::on_failure(Exchange& ex, const std::string& why) const {
  // The warning's prefix is the type; the instance name tells which of several it was.
  warn_("the authorization service of \"" + name_ + "\" failed (" + why + ")" +
        (config_.failure_mode_allow ? "; requests pass (failure_mode_allow)" : "; answering 503"));
  if (config_.failure_mode_allow) {
    counters_.count("failed_open");
    ex.set_detail("ext_auth_failed_open");  // the mark in the access log and the span
    return Decision::next();
  }
  counters_.count("failed_closed");
  ex.answer_error(503, "ext_auth_unavailable", "the authorization service is unavailable");
  return Decision::respond();
}

Decision ExtAuthMiddleware::on_answer(Exchange& ex, upstream::DetachedResult& result) const {
  if (!result.ok) return on_failure(ex, result.timed_out ? "timed out" : result.error);
  if (result.status >= 500) return on_failure(ex, "status " + std::to_string(result.status));
  if (result.status < 200 || result.status > 299) {
    counters_.count("denied");
    // The service's answer, as it wrote it (a 401 with its challenge, a 302 to a login page).
    Response& r = ex.response();
    r.clear();
    r.set_status(result.status);
    for (const auto& [name, value] : result.headers)
      r.add_header(name, value);
    r.body() = std::move(result.body);
    ex.set_detail("ext_auth_denied");
    return Decision::respond();
  }
  for (const auto& name : config_.response_headers) {
    ex.request().remove_header(name);
    for (const auto& [n, v] : result.headers)
      if (iequals(n, name)) ex.request().add_header(name, v);
  }
  const auto& id = config_.identity;
  std::string user(id.user_header.empty() ? "" : header_of(result, id.user_header));
  std::string tier(id.tier_header.empty() ? "" : header_of(result, id.tier_header));
  id.set(ex, std::move(user), std::move(tier));
  counters_.count("allowed");
  return Decision::next();
}

void ExtAuthMiddleware::strip(Exchange& ex) const {
  config_.identity.strip(ex);
  for (const auto& name : config_.response_headers)
    ex.request().remove_header(name);
}

Decision ExtAuthMiddleware::pre_handle(Exchange& ex) {
  strip(ex);  // whatever the outcome
  boost::asio::io_context* io = server::current_io_context();
  if (io == nullptr) return on_failure(ex, "not on a server worker");

  // The check may not outlive the request's deadline (the `timeout` middleware's).
  auto timeout = config_.timeout;
  if (auto deadline = ex.context().deadline()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock_.now());
    if (left.count() <= 0) return on_failure(ex, "the request's deadline has passed");
    timeout = std::min(timeout, left);
  }
  auto call = std::make_shared<Call>();
  call->resume = ex.defer();
  ex.on_cancel([call] {
    call->cancelled = true;
    if (call->abort) call->abort();
  });
  call->abort =
      upstream::start_detached_call(*io, config_.endpoint, check_request(ex), timeout,
                                    [this, &ex, call](upstream::DetachedResult result) {
                                      if (call->cancelled)
                                        return;  // the request is gone: touch nothing of it
                                      call->abort = nullptr;
                                      // This runs on the request's worker (the io_context the
                                      // call was started on), so the answer is written into
                                      // ex.response() before the Resume continues the chain.
                                      const Decision d = on_answer(ex, result);
                                      call->resume(d);
                                    });
  return Decision::wait();
}

}  // namespace sluice::middleware
