// A gateway config loaded in-process with a fake clock, and requests run through one route's
// chain on ManualHosts: for the resilience middlewares' unit tests.
//
//   Harness h(R"(routes: [{name: r, middlewares: [{type: rate_limit, ...}], handler: {type:
//   echo}}])"); auto call = h.start("r", "GET", "/x", {{"X-Tenant", "a"}});   // runs until it
//   waits or ends EXPECT_EQ(call->status(), 429);
#pragma once

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/config.hpp"
#include "gateway/route_table.hpp"
#include "observe/metrics/metrics_registry.hpp"
#include "support/manual_host.hpp"

namespace sluice::testing {

// A handler the test steers: its status, a fake latency, or waiting until released.
class ScriptedHandler final : public Handler {
 public:
  std::string_view kind() const override { return "scripted"; }
  Decision handle(Exchange& ex) override {
    ++calls;
    if (clock != nullptr && latency.count() > 0) clock->advance(latency);
    if (throws) throw std::runtime_error("scripted failure");
    if (hold) {
      held.push_back(ex.defer());
      return Decision::wait();
    }
    ex.answer(status, "text/plain", body);
    if (!detail.empty()) ex.set_detail(detail);
    return Decision::respond();
  }
  int status = 200;
  std::string body = "ok";
  std::string detail;
  bool throws = false;
  bool hold = false;
  std::chrono::nanoseconds latency{0};
  FakeClock* clock = nullptr;
  int calls = 0;
  std::vector<Resume> held;
};

struct Call {
  Call() = default;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  // A request still waiting is cancelled and every timer fired, so nothing queued on the host
  // (a Resume holds its host) outlives the call.
  ~Call() {
    if (ex != nullptr && !done) ExchangeDriver(*ex).cancel();
    host->advance(std::chrono::hours(24));
  }

  std::shared_ptr<ManualHost> host = std::make_shared<ManualHost>();
  Exchange* ex = nullptr;
  std::shared_ptr<const ChainSnapshot> snapshot;
  bool done = false;
  int status() const { return ex->response().status(); }
  std::string header(std::string_view name) const {
    return std::string(ex->response().header(name));
  }
  const std::string& body() const { return ex->response().body(); }
};

class Harness {
 public:
  explicit Harness(const std::string& yaml) {
    services.clock = &clock;
    // The gateway's registry: it also serves the families summed from per-worker shards.
    services.metrics = std::make_shared<observe::MetricsRegistry>();
    auto out = gateway::load_config_text(yaml, "test.yaml", nullptr, services);
    errors = out.errors;
    config = out.config;
    handler.clock = &clock;
  }
  // Resumes the handler still holds fire into their hosts' queues; drain those.
  ~Harness() {
    handler.held.clear();
    for (auto& host : hosts_)
      host->advance(std::chrono::hours(24));
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;
  // Loads `yaml` as a reload of the current config (unchanged middlewares are reused).
  std::vector<std::string> reload(const std::string& yaml) {
    auto out = gateway::load_config_text(yaml, "test.yaml", config.get(), services);
    if (out.ok()) config = out.config;
    return out.errors;
  }

  const gateway::Route& route(std::string_view name) const {
    const gateway::Route* r = config->routes->find(name);
    EXPECT_NE(r, nullptr) << name;
    return *r;
  }

  // Starts a request on `route` with the scripted handler; runs until it ends or waits.
  std::unique_ptr<Call> start(std::string_view route_name, std::string_view method,
                              std::string_view target,
                              std::vector<std::pair<std::string, std::string>> headers = {},
                              std::string client_ip = "10.0.0.1") {
    auto call = std::make_unique<Call>();
    hosts_.push_back(call->host);
    const auto& r = route(route_name);
    // The chain times its hooks on the fake clock too, so the middlewares share its readings
    // (Exchange::hook_time) as they do the real clock's in the server.
    call->host->set_clock(&clock);
    call->ex = &call->host->exchange(method, target);
    for (auto& [k, v] : headers)
      call->ex->request().set_header(k, v);
    call->ex->context().set_client_ip(client_ip);
    ExchangeDriver(*call->ex).set_route(&r.info);
    call->snapshot = r.chain->current();
    Call* raw = call.get();
    ExchangeDriver(*call->ex).run(*call->snapshot, handler, [raw] { raw->done = true; });
    call->host->run_all();
    return call;
  }
  std::unique_ptr<Call> get(std::string_view route_name, std::string_view target = "/",
                            std::vector<std::pair<std::string, std::string>> headers = {},
                            std::string client_ip = "10.0.0.1") {
    return start(route_name, "GET", target, std::move(headers), std::move(client_ip));
  }

  std::string metrics_text() const {
    prometheus::TextSerializer serializer;
    return serializer.Serialize(services.metrics->Collect());
  }

  FakeClock clock;
  GatewayServices services;
  std::shared_ptr<gateway::LoadedConfig> config;
  std::vector<std::string> errors;
  ScriptedHandler handler;

 private:
  std::vector<std::shared_ptr<ManualHost>> hosts_;
};

}  // namespace sluice::testing
