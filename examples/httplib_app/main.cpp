// An existing cpp-httplib application that adds sluice middlewares: request ids, a request
// counter (an Observer, so it sees rejected requests too), a per-client rate limit and a
// circuit breaker around its handlers. The application's own handlers stay unchanged; each is
// wrapped once with `mw.wrap(...)`.
//
//   sluice_httplib_app 8080 &   curl -i localhost:8080/hello   curl localhost:8080/stats
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <iostream>

#include "middleware/request_id/request_id.hpp"
#include "resilience/circuit_breaker.hpp"
#include "resilience/local_rate_limiter.hpp"
#include "sluice/adapters/httplib.hpp"

namespace {

// 10 requests per second per client address, bursts of 20: 429 with Retry-After beyond.
class RateLimit final : public sluice::Middleware {
 public:
  std::string_view name() const override { return "rate_limit"; }
  sluice::Decision pre_handle(sluice::Exchange& ex) override {
    auto d = *limiter_.try_decide(ex.context().client_ip(), {.rate_per_second = 10, .burst = 20});
    if (d.allowed) return sluice::Decision::next();
    const auto secs = std::chrono::ceil<std::chrono::seconds>(d.retry_after).count();
    ex.answer_error(429, "rate_limited", "too many requests");
    ex.response().set_header("Retry-After", std::to_string(std::max<long>(1, secs)));
    return sluice::Decision::respond();
  }

 private:
  sluice::resilience::LocalRateLimiter limiter_;
};

// Opens after more than half of at least 10 requests in a second failed (5xx); 503 while open.
class Breaker final : public sluice::Middleware {
  struct Admitted {
    sluice::resilience::Permit permit;
  };

 public:
  std::string_view name() const override { return "breaker"; }
  sluice::Decision pre_handle(sluice::Exchange& ex) override {
    auto permit = breaker_.try_acquire();
    if (!permit) return ex.answer_error(503, "circuit_open", "the service is failing; retry later");
    ex.context().emplace<Admitted>(Admitted{permit});
    return sluice::Decision::next();
  }
  void post_handle(sluice::Exchange& ex, std::chrono::nanoseconds elapsed) override {
    if (auto* a = ex.context().get<Admitted>()) {
      breaker_.on_complete(a->permit, elapsed, ex.response().status() >= 500);
    }
  }

 private:
  sluice::resilience::CircuitBreaker breaker_{"app", {.retry_timeout = std::chrono::seconds(5)}};
};

// Counts answers by class; an observer sees every outcome, rejections included.
class Counter final : public sluice::Observer {
 public:
  void on_request_end(sluice::Exchange& ex) override {
    (ex.response().status() < 400 ? ok : rejected).fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<long> ok{0}, rejected{0};
};

}  // namespace

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 8080;
  httplib::Server server;

  // --- sluice: five lines -----------------------------------------------------------------
  auto counter = std::make_shared<Counter>();
  auto chain = std::make_shared<sluice::Chain>(
      "app", std::vector<std::shared_ptr<sluice::Observer>>{counter});
  chain->use(std::make_shared<sluice::middleware::RequestIdMiddleware>("request_id", "X-Request-Id",
                                                                       true));
  chain->use(std::make_shared<RateLimit>());
  chain->use(std::make_shared<Breaker>());
  sluice::httplib_adapter::ChainRunner mw(chain);

  // --- the application, as it was, with each handler wrapped -------------------------------
  server.Get("/hello", mw.wrap([](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello\n", "text/plain");
  }));
  server.Get("/fail", mw.wrap([](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("failed\n", "text/plain");
  }));
  server.Get("/stats", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok " + std::to_string(counter->ok) + "\nrejected " +
                        std::to_string(counter->rejected) + "\n",
                    "text/plain");
  });

  std::cout << "listening on 127.0.0.1:" << port << std::endl;
  return server.listen("127.0.0.1", port) ? 0 : 1;
}
