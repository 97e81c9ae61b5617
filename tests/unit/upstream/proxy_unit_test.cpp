// Proxy mechanisms without a server: retry budget arithmetic, outlier ejection with a fake
// clock, load balancing and its panic rule, CIDR matching, forwarding rules — and the proxy
// handler in-process on a real worker thread for the chaos upstream-fault switch.
#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <thread>

#include "core/http_message.hpp"
#include "gateway/proxy/proxy_handler.hpp"
#include "net/cidr.hpp"
#include "server/worker_pool.hpp"
#include "sluice/chain.hpp"
#include "sluice/exchange_driver.hpp"
#include "upstream/cluster.hpp"
#include "upstream/forwarding.hpp"
#include "upstream/upstream_faults.hpp"

namespace sluice::upstream {
namespace {

using namespace std::chrono_literals;

TEST(RetryBudget, AllowsMinConcurrencyThenAShareOfActiveRequests) {
  RetryBudget budget(20.0, 2);
  for (int i = 0; i < 10; ++i)
    budget.request_started();
  EXPECT_TRUE(budget.try_start_retry());
  EXPECT_TRUE(budget.try_start_retry());
  EXPECT_FALSE(budget.try_start_retry()) << "20% of 10 = 2";
  for (int i = 0; i < 10; ++i)
    budget.request_started();
  EXPECT_TRUE(budget.try_start_retry()) << "20% of 20 = 4";
  EXPECT_TRUE(budget.try_start_retry());
  EXPECT_FALSE(budget.try_start_retry());
  budget.retry_finished();
  EXPECT_TRUE(budget.try_start_retry());
  RetryBudget none(0.0, 0);
  none.request_started();
  EXPECT_FALSE(none.try_start_retry());
}

TEST(EndpointHealth, EjectsAfterConsecutiveFailuresWithGrowingBackoff) {
  FakeClock clock;
  OutlierPolicy policy;
  policy.consecutive_failures = 3;
  policy.base_ejection = 10s;
  policy.max_ejection = 100s;
  EndpointHealth h;
  EXPECT_FALSE(h.record_failure(clock.now(), policy));
  EXPECT_FALSE(h.record_failure(clock.now(), policy));
  h.record_success();  // the streak starts over
  EXPECT_FALSE(h.record_failure(clock.now(), policy));
  EXPECT_FALSE(h.record_failure(clock.now(), policy));
  EXPECT_TRUE(h.record_failure(clock.now(), policy));
  EXPECT_TRUE(h.ejected(clock.now()));
  clock.advance(10s);
  EXPECT_FALSE(h.ejected(clock.now())) << "first ejection: base period";
  for (int i = 0; i < 2; ++i)
    h.record_failure(clock.now(), policy);
  EXPECT_TRUE(h.record_failure(clock.now(), policy));
  clock.advance(19s);
  EXPECT_TRUE(h.ejected(clock.now())) << "second ejection: twice as long";
  clock.advance(1s);
  EXPECT_FALSE(h.ejected(clock.now()));
}

std::vector<std::unique_ptr<Endpoint>> endpoints(int n) {
  std::vector<std::unique_ptr<Endpoint>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_unique<Endpoint>());
    out.back()->text = "e" + std::to_string(i);
  }
  return out;
}

TEST(LoadBalancer, RoundRobinSkipsEjectedAndPanicsWhenTooFewAreLeft) {
  FakeClock clock;
  auto eps = endpoints(4);
  LoadBalancer lb(LbPolicy::kRoundRobin, 50);
  std::map<int, int> seen;
  for (int i = 0; i < 8; ++i)
    seen[lb.pick(eps, clock.now(), -1)]++;
  EXPECT_EQ(seen, (std::map<int, int>{{0, 2}, {1, 2}, {2, 2}, {3, 2}}));

  OutlierPolicy policy;
  policy.consecutive_failures = 1;
  eps[1]->health.record_failure(clock.now(), policy);
  seen.clear();
  for (int i = 0; i < 30; ++i)
    seen[lb.pick(eps, clock.now(), -1)]++;
  EXPECT_EQ(seen.count(1), 0u);
  eps[2]->health.record_failure(clock.now(), policy);
  eps[3]->health.set_check_passing(false);  // 1 of 4 usable: below 50%, panic
  seen.clear();
  for (int i = 0; i < 40; ++i)
    seen[lb.pick(eps, clock.now(), -1)]++;
  EXPECT_EQ(seen.size(), 4u) << "panic spreads over every endpoint";
  EXPECT_NE(lb.pick(eps, clock.now(), 0), 0) << "a retry avoids the previous endpoint";
}

TEST(LoadBalancer, LeastRequestPicksTheLessBusyOfTwo) {
  FakeClock clock;
  auto eps = endpoints(2);
  eps[0]->active = 5;
  LoadBalancer lb(LbPolicy::kLeastRequest, 50);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(lb.pick(eps, clock.now(), -1), 1);
}

TEST(Cidr, MatchesV4V6AndMappedAddresses) {
  net::CidrSet set;
  std::string error;
  ASSERT_TRUE(set.add("10.0.0.0/8", error));
  ASSERT_TRUE(set.add("::1", error));
  ASSERT_TRUE(set.add("192.168.1.7", error));
  EXPECT_TRUE(set.contains("10.200.3.4"));
  EXPECT_TRUE(set.contains("::ffff:10.1.1.1"));
  EXPECT_TRUE(set.contains("::1"));
  EXPECT_TRUE(set.contains("192.168.1.7"));
  EXPECT_FALSE(set.contains("192.168.1.8"));
  EXPECT_FALSE(set.contains("11.0.0.1"));
  EXPECT_FALSE(set.contains("not an address"));
  EXPECT_FALSE(set.add("10.0.0.0/33", error));
  EXPECT_FALSE(set.add("banana", error));
}

TEST(Forwarding, TargetsAndHopByHop) {
  EXPECT_EQ(upstream_target("/api/users?x=1", "/api"), "/users?x=1");
  EXPECT_EQ(upstream_target("/api", "/api"), "/");
  EXPECT_EQ(upstream_target("/apix", "/api"), "/x");
  EXPECT_EQ(upstream_target("http://h.example/a/b", ""), "/a/b");
  EXPECT_EQ(upstream_target("http://h.example", ""), "/");
  boost::beast::http::fields f;
  f.set("Connection", "close, X-A");
  f.set("X-A", "1");
  f.set("Keep-Alive", "5");
  f.set("Proxy-Foo", "1");
  f.set("X-B", "2");
  strip_hop_by_hop(f);
  EXPECT_EQ(f.count("X-A") + f.count("Connection") + f.count("Keep-Alive") + f.count("Proxy-Foo"),
            0u);
  EXPECT_EQ(f["X-B"], "2");
}

// The proxy handler in-process, on a real worker, for the chaos switch of UpstreamFaults.
class WorkerHost final : public ExchangeHost {
 public:
  explicit WorkerHost(boost::asio::io_context& io) : io_(io) {}
  void post(std::function<void()> fn) override { boost::asio::post(io_, std::move(fn)); }
  void post_after(std::chrono::nanoseconds delay, std::function<void()> fn) override {
    auto t = std::make_shared<boost::asio::steady_timer>(io_, delay);
    t->async_wait([t, fn = std::move(fn)](boost::system::error_code) { fn(); });
  }
  detail::RequestMessage request;
  detail::ResponseMessage response;
  Exchange exchange{*this, Request(request), Response(response)};

 private:
  boost::asio::io_context& io_;
};

TEST(ProxyHandler, FollowsTheChaosUpstreamFaultSwitch) {
  httplib::Server upstream;
  std::atomic<int> hits{0};
  upstream.Get("/", [&](const httplib::Request&, httplib::Response& r) {
    hits++;
    r.set_content("up", "text/plain");
  });
  const int port = upstream.bind_to_any_port("127.0.0.1");
  std::thread upstream_thread([&] { upstream.listen_after_bind(); });

  ClusterConfig config;
  config.name = "backend";
  config.retries.max = 0;
  config.pool_max_per_endpoint = 0;  // nothing pooled: the upstream stops at once
  auto eps = endpoints(1);
  eps[0]->address = {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)};
  eps[0]->host_header = "127.0.0.1";
  auto route = std::make_shared<ProxyRoute>();
  route->cluster =
      std::make_shared<Cluster>(config, std::move(eps), system_steady_clock(), ClusterMetrics{});
  route->timeout = 300ms;
  upstream::UpstreamFaults faults;
  route->faults = &faults;
  gateway::proxy::ProxyHandler handler(route);
  Chain chain{"test"};

  server::WorkerPool workers(1, "test");
  workers.start();
  auto host = std::make_shared<WorkerHost>(workers.context(0));
  auto run = [&]() {
    std::promise<std::pair<int, std::string>> result;
    boost::asio::post(workers.context(0), [&] {
      host->request = detail::RequestMessage{};
      host->request.method(boost::beast::http::verb::get);
      host->request.target("/");
      host->request.version(11);
      host->request.set(boost::beast::http::field::host, "front");
      host->response = detail::ResponseMessage{};
      ExchangeDriver(host->exchange)
          .reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
      host->exchange.context().set_client_ip("127.0.0.1");
      host->exchange.context().set_peer_ip("127.0.0.1");
      static thread_local auto lease = chain.acquire();
      ExchangeDriver(host->exchange).run(*lease, handler, [&] {
        result.set_value({host->response.result_int(), host->response.body()});
      });
    });
    return result.get_future().get();
  };

  EXPECT_EQ(run(), std::make_pair(200, std::string("up")));
  faults.set("backend", {upstream::UpstreamFault::Kind::kConnectRefused});
  auto refused = run();
  EXPECT_EQ(refused.first, 502);
  EXPECT_NE(refused.second.find("upstream_unreachable"), std::string::npos);
  faults.set("backend", {upstream::UpstreamFault::Kind::kStatus, 418});
  EXPECT_EQ(run().first, 418);
  faults.set("backend", {upstream::UpstreamFault::Kind::kBlackHole});
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run().first, 504);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_EQ(hits.load(), 1) << "no faulted request reached the upstream";
  faults.clear("backend");
  EXPECT_EQ(run().first, 200);
  EXPECT_EQ(hits.load(), 2);

  workers.stop();
  upstream.stop();
  upstream_thread.join();
}

}  // namespace
}  // namespace sluice::upstream
