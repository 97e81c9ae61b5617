// The `fault` middleware from YAML on a ManualHost (no threads, no sleeping: timers fire when
// the test advances time): seeded percentages with exact counts, match rules, delays that do
// not block the worker, the delay cap, reset, throttling, header-driven faults, runtime
// switches and config errors with positions.
#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <nlohmann/json.hpp>

#include "core/http_message.hpp"
#include "core/seeded_draw.hpp"
#include "gateway/config.hpp"
#include "middleware/fault/fault_board.hpp"
#include "middleware/fault/injected_faults.hpp"
#include "server/connection_control.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::ManualHost;

struct Gateway {
  GatewayServices services;
  std::shared_ptr<gateway::LoadedConfig> config;
  std::shared_ptr<ManualHost> host = std::make_shared<ManualHost>();

  explicit Gateway(const std::string& yaml) {
    services.metrics = std::make_shared<prometheus::Registry>();
    auto outcome = gateway::load_config_text(yaml, "test.yaml", nullptr, services);
    for (const auto& e : outcome.errors)
      ADD_FAILURE() << e;
    config = outcome.config;
  }
  middleware::fault::FaultBoard& board() {
    return *services.shared.get<middleware::fault::FaultBoard>();
  }
  const gateway::Route& route(std::string_view name = "r") { return *config->routes->find(name); }

  // Runs one request on `ex` (ManualHost's exchange or one of the test's own); returns whether
  // it finished before any time passed.
  bool start(Exchange& ex, const gateway::Route& r, bool& done) {
    ExchangeDriver(ex).set_route(&r.info);
    lease = r.chain->acquire();
    ExchangeDriver(ex).run(*lease, *r.handler, [&done] { done = true; });
    host->run_all();
    return done;
  }
  Exchange& request(std::string_view method, std::string_view target,
                    std::vector<std::pair<std::string, std::string>> headers = {},
                    std::string client = "127.0.0.1") {
    auto& ex = host->exchange(method, target);
    for (const auto& [h, v] : headers)
      ex.request().set_header(h, v);
    ex.context().set_client_ip(client);
    bool done = false;
    start(ex, route(), done);
    if (!done) host->advance(10min);
    EXPECT_TRUE(done);
    return ex;
  }
  Chain::Lease lease;
};

// A second exchange on the same host (the same worker), with its own messages.
struct OwnExchange {
  detail::RequestMessage req;
  detail::ResponseMessage res;
  Exchange ex;
  OwnExchange(ManualHost& host, std::string_view method, std::string_view target)
      : ex(host, Request(req), Response(res)) {
    req.method_string({method.data(), method.size()});
    req.target({target.data(), target.size()});
    req.version(11);
    res.version(11);
    ExchangeDriver(ex).reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  }
};

std::string route_with(const std::string& middleware) {
  return "routes:\n  - name: r\n    middlewares:\n" + middleware +
         "    handler: { type: respond, status: 200, body: ok }\n";
}

// How many of the first n draws of a stream hit at pct: the formula, independently.
int predicted_hits(std::uint64_t seed, std::string_view fault, int n, double pct) {
  int hits = 0;
  for (int i = 0; i < n; ++i)
    hits += unit_draw(stream_seed(seed, fault), static_cast<std::uint64_t>(i)) * 100 < pct;
  return hits;
}

TEST(FaultMiddleware, AbortPercentageExactCountAndMatch) {
  Gateway gw(route_with(R"(      - type: fault
        seed: 7
        faults:
          - name: boom
            percentage: 10
            match: { prefix: /api, methods: [GET] }
            abort: { status: 503 }
)"));
  int aborted = 0;
  for (int i = 0; i < 1000; ++i) {
    auto& ex = gw.request("GET", "/api/x");
    if (ex.response().status() == 503) {
      ++aborted;
      EXPECT_EQ(ex.detail(), "fault_abort");
      EXPECT_EQ(nlohmann::json::parse(ex.response().body())["error"], "fault_abort");
    } else {
      EXPECT_EQ(ex.response().status(), 200);
    }
  }
  EXPECT_EQ(aborted, predicted_hits(7, "boom", 1000, 10));
  EXPECT_GT(aborted, 60);
  EXPECT_LT(aborted, 140);
  // Non-matching requests never draw: the count of matched requests stays at 1000.
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(gw.request("POST", "/api/x").response().status(), 200);
    EXPECT_EQ(gw.request("GET", "/web").response().status(), 200);
  }
  auto v = gw.board().view("boom");
  EXPECT_EQ(v->matched, 1000u);
  EXPECT_EQ(v->injected, static_cast<std::uint64_t>(aborted));
}

TEST(FaultMiddleware, SameSeedSameRequestsHit) {
  auto run = [](int seed) {
    Gateway gw(route_with("      - { type: fault, seed: " + std::to_string(seed) +
                          ", faults: [ { name: f, percentage: 30, abort: { status: 500 } } ] }\n"));
    std::vector<int> statuses;
    for (int i = 0; i < 300; ++i)
      statuses.push_back(gw.request("GET", "/").response().status());
    return statuses;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

TEST(FaultMiddleware, AbortWithBodyHeadersAndReset) {
  Gateway gw(route_with(R"(      - type: fault
        seed: 1
        faults:
          - name: teapot
            match: { headers: { x-kind: teapot } }
            abort: { status: 418, body: "short and stout", content_type: text/plain,
                     headers: { X-Fault: teapot } }
          - name: crash
            match: { headers: { x-kind: reset } }
            abort: { reset: true }
)"));
  auto& t = gw.request("GET", "/", {{"x-kind", "teapot"}});
  EXPECT_EQ(t.response().status(), 418);
  EXPECT_EQ(t.response().body(), "short and stout");
  EXPECT_EQ(t.response().header("X-Fault"), "teapot");
  EXPECT_EQ(t.detail(), "fault_abort");
  auto* injected = t.context().get<middleware::fault::InjectedFaults>();
  ASSERT_NE(injected, nullptr);
  ASSERT_EQ(injected->list.size(), 1u);
  EXPECT_EQ(injected->list[0].name, "teapot");
  EXPECT_EQ(injected->list[0].status, 418);

  auto& r = gw.request("GET", "/", {{"x-kind", "reset"}});
  EXPECT_NE(r.context().get<server::ResetConnection>(), nullptr) << "the session resets";
  EXPECT_EQ(r.detail(), "fault_reset");
  EXPECT_EQ(gw.request("GET", "/").context().get<server::ResetConnection>(), nullptr);
}

// One worker (one host): a delayed request waits on a timer while another request on the same
// worker runs to completion.
TEST(FaultMiddleware, DelayDoesNotBlockTheWorker) {
  Gateway gw(route_with(R"(      - type: fault
        seed: 1
        faults:
          - { name: slow, match: { prefix: /slow }, delay: { fixed_ms: 500 } }
)"));
  OwnExchange slow(*gw.host, "GET", "/slow");
  OwnExchange fast(*gw.host, "GET", "/fast");
  bool slow_done = false, fast_done = false;
  Chain::Lease slow_lease = gw.route().chain->acquire();
  ExchangeDriver(slow.ex).set_route(&gw.route().info);
  ExchangeDriver(slow.ex).run(*slow_lease, *gw.route().handler, [&] { slow_done = true; });
  gw.host->run_all();
  EXPECT_FALSE(slow_done) << "waiting on its timer";
  EXPECT_EQ(gw.host->pending_timers(), 1u);

  EXPECT_TRUE(gw.start(fast.ex, gw.route(), fast_done)) << "served while the other waits";
  EXPECT_EQ(fast.ex.response().status(), 200);
  EXPECT_FALSE(slow_done);

  gw.host->advance(499ms);
  EXPECT_FALSE(slow_done);
  gw.host->advance(1ms);
  EXPECT_TRUE(slow_done);
  EXPECT_EQ(slow.ex.response().status(), 200);
  EXPECT_EQ(slow.ex.detail(), "fault_delay");
  ASSERT_NE(slow.ex.context().get<middleware::fault::InjectedFaults>(), nullptr);
  EXPECT_EQ(slow.ex.context().get<middleware::fault::InjectedFaults>()->list[0].delay, 500ms);
}

TEST(FaultMiddleware, DelayCapSkipsAndCounts) {
  Gateway gw(route_with(R"(      - type: fault
        seed: 1
        max_active_delays: 1
        faults:
          - { name: slow, delay: { fixed_ms: 100 } }
)"));
  OwnExchange a(*gw.host, "GET", "/"), b(*gw.host, "GET", "/");
  bool a_done = false, b_done = false;
  EXPECT_FALSE(gw.start(a.ex, gw.route(), a_done));
  Chain::Lease keep = std::move(gw.lease);
  EXPECT_TRUE(gw.start(b.ex, gw.route(), b_done)) << "over the cap: not delayed";
  EXPECT_EQ(b.ex.detail(), "");
  gw.host->advance(100ms);
  EXPECT_TRUE(a_done);
  auto v = gw.board().view("slow");
  EXPECT_EQ(v->injected, 1u);
  EXPECT_EQ(v->skipped, 1u);
  bool c_done = false;
  OwnExchange c(*gw.host, "GET", "/");
  EXPECT_FALSE(gw.start(c.ex, gw.route(), c_done)) << "the slot was given back";
  gw.host->advance(100ms);
  EXPECT_TRUE(c_done);
}

TEST(FaultMiddleware, DelayThenAbort) {
  Gateway gw(route_with(R"(      - type: fault
        seed: 1
        faults:
          - { name: slow, delay: { fixed_ms: 50 } }
          - { name: boom, abort: { status: 502 } }
)"));
  OwnExchange a(*gw.host, "GET", "/");
  bool done = false;
  EXPECT_FALSE(gw.start(a.ex, gw.route(), done));
  gw.host->advance(50ms);
  EXPECT_TRUE(done);
  EXPECT_EQ(a.ex.response().status(), 502);
  EXPECT_EQ(a.ex.detail(), "fault_abort");
  EXPECT_EQ(a.ex.context().get<middleware::fault::InjectedFaults>()->list.size(), 2u);
}

TEST(FaultMiddleware, ThrottleWaitsBodyOverBandwidth) {
  Gateway gw(R"(routes:
  - name: r
    middlewares:
      - { type: fault, seed: 1, faults: [ { name: slow-body, throttle: { bytes_per_second: 100 } } ] }
    handler: { type: respond, status: 200, body: ")" +
             std::string(1000, 'x') + "\" }\n");
  OwnExchange a(*gw.host, "GET", "/");
  bool done = false;
  EXPECT_FALSE(gw.start(a.ex, gw.route(), done));
  gw.host->advance(9999ms);
  EXPECT_FALSE(done);
  gw.host->advance(1ms);
  EXPECT_TRUE(done) << "1000 bytes at 100 B/s: 10 s";
  EXPECT_EQ(a.ex.detail(), "fault_throttle");
  EXPECT_EQ(a.ex.response().body().size(), 1000u);
}

TEST(FaultMiddleware, HeaderFaultsOffByDefault) {
  Gateway gw(route_with(
      R"(      - { type: fault, seed: 1, faults: [ { name: x, enabled: false, abort: { status: 500 } } ] }
)"));
  auto& ex = gw.request("GET", "/", {{"x-sluice-fault-abort-status", "503"}});
  EXPECT_EQ(ex.response().status(), 200) << "a client cannot inject faults by default";
  EXPECT_EQ(gw.host->pending_timers(), 0u);
}

TEST(FaultMiddleware, HeaderFaultsOnlyFromAllowedClients) {
  Gateway gw(route_with(R"(      - type: fault
        seed: 1
        headers: { enabled: true, allowed_clients: [127.0.0.0/8, "::1"], max_delay_ms: 300 }
)"));
  auto& outsider = gw.request("GET", "/", {{"x-sluice-fault-abort-status", "503"}}, "10.0.0.1");
  EXPECT_EQ(outsider.response().status(), 200);
  EXPECT_FALSE(outsider.request().has_header("x-sluice-fault-abort-status")) << "stripped";

  auto& insider = gw.request("GET", "/", {{"x-sluice-fault-abort-status", "503"}}, "127.0.0.1");
  EXPECT_EQ(insider.response().status(), 503);
  EXPECT_EQ(insider.detail(), "fault_abort");

  OwnExchange d(*gw.host, "GET", "/");
  d.req.set("x-sluice-fault-delay-ms", "5000");
  d.ex.context().set_client_ip("::1");
  bool done = false;
  EXPECT_FALSE(gw.start(d.ex, gw.route(), done));
  gw.host->advance(300ms);
  EXPECT_TRUE(done) << "capped at max_delay_ms";

  int hits = 0;
  for (int i = 0; i < 200; ++i) {
    auto& ex = gw.request(
        "GET", "/",
        {{"x-sluice-fault-abort-status", "500"}, {"x-sluice-fault-abort-percentage", "25"}});
    hits += ex.response().status() == 500;
  }
  EXPECT_GT(hits, 25);
  EXPECT_LT(hits, 75);
  EXPECT_EQ(gw.board().view(middleware::fault::FaultBoard::kHeaderFault)->injected,
            static_cast<std::uint64_t>(hits + 2));
}

TEST(FaultMiddleware, RuntimeSwitchAndPercentage) {
  Gateway gw(route_with(R"(      - type: fault
        seed: 1
        faults: [ { name: boom, enabled: false, abort: { status: 503 } } ]
)"));
  EXPECT_EQ(gw.request("GET", "/").response().status(), 200);
  ASSERT_TRUE(gw.board().set_enabled("boom", true, "test"));
  EXPECT_EQ(gw.request("GET", "/").response().status(), 503);
  gw.board().set_percentage("boom", 0, "test");
  EXPECT_EQ(gw.request("GET", "/").response().status(), 200);
  gw.board().set_percentage("boom", 100, "test");
  gw.board().set_enabled("boom", false, "test");
  EXPECT_EQ(gw.request("GET", "/").response().status(), 200);
}

TEST(FaultMiddleware, DependencyUnavailableSetsTheUpstreamSwitchboard) {
  Gateway gw(route_with(R"(      - type: fault
        seed: 1
        faults:
          - name: pay-down
            dependency_unavailable: { cluster: payments, mode: status, status: 503 }
)"));
  auto* upstreams = gw.services.shared.get<upstream::UpstreamFaults>();
  ASSERT_NE(upstreams, nullptr);
  auto f = upstreams->check("payments");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, upstream::UpstreamFault::Kind::kStatus);
  EXPECT_EQ(f->status, 503);
  gw.board().set_enabled("pay-down", false, "test");
  EXPECT_FALSE(upstreams->check("payments"));
  gw.board().set_enabled("pay-down", true, "test");
  gw.config.reset();  // the config (and the middleware) is gone: the outage is lifted
  EXPECT_FALSE(upstreams->check("payments"));
}

TEST(FaultMiddleware, ConfigErrorsHavePositions) {
  GatewayServices services;
  services.metrics = std::make_shared<prometheus::Registry>();
  auto errors = [&](const std::string& mw) {
    auto outcome = gateway::load_config_text(route_with(mw), "bad.yaml", nullptr, services);
    std::string all;
    for (const auto& e : outcome.errors)
      all += e + "\n";
    return all;
  };
  auto two = errors(R"(      - type: fault
        faults: [ { name: a, delay: { fixed_ms: 1 }, abort: { status: 500 } } ]
)");
  EXPECT_NE(two.find("bad.yaml:5:19: routes[0].middlewares[0].faults[0]: a fault has exactly one"),
            std::string::npos)
      << two;
  EXPECT_EQ(two.find("configure at least one fault"), std::string::npos) << two;

  auto dist = errors(R"(      - type: fault
        faults: [ { name: a, delay: { distribution: uniform, min_ms: 5, fixed_ms: 3 } } ]
)");
  EXPECT_NE(dist.find("fixed_ms: does not apply to distribution: uniform"), std::string::npos)
      << dist;
  EXPECT_NE(dist.find("max_ms"), std::string::npos) << dist;

  auto dep = errors(R"(      - type: fault
        faults: [ { name: a, match: { prefix: /x }, dependency_unavailable: { cluster: c } } ]
)");
  EXPECT_NE(dep.find("cluster-wide"), std::string::npos) << dep;

  auto cidr = errors(R"(      - type: fault
        headers: { enabled: true, allowed_clients: [10.0.0.0/99] }
)");
  EXPECT_NE(cidr.find("prefix length must be 0..32"), std::string::npos) << cidr;

  auto dup = errors(R"(      - type: fault
        faults: [ { name: a, abort: {} }, { name: a, abort: {} } ]
)");
  EXPECT_NE(dup.find("duplicate fault name"), std::string::npos) << dup;
  auto typo = errors(R"(      - type: fault
        faults: [ { name: a, abort: { stauts: 500 } } ]
)");
  EXPECT_NE(typo.find("did you mean \"status\""), std::string::npos) << typo;
}

}  // namespace
}  // namespace sluice
