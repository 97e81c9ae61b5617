// The proxy handler in-process, on a real worker thread and a real upstream (cpp-httplib), for
// the chaos switch of UpstreamFaults: refused, a fixed status, a black hole, then normal again.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "core/http_message.hpp"
#include "gateway/proxy/proxy_handler.hpp"
#include "server/worker_pool.hpp"
#include "sluice/chain.hpp"
#include "sluice/exchange_driver.hpp"
#include "upstream/cluster.hpp"
#include "upstream/upstream_faults.hpp"

namespace sluice::gateway::proxy {
namespace {

using namespace std::chrono_literals;

// A host whose exchange runs on a real worker's io_context.
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
  httplib::Server origin;
  std::atomic<int> hits{0};
  origin.Get("/", [&](const httplib::Request&, httplib::Response& r) {
    hits++;
    r.set_content("up", "text/plain");
  });
  const int port = origin.bind_to_any_port("127.0.0.1");
  std::thread origin_thread([&] { origin.listen_after_bind(); });

  upstream::ClusterConfig config;
  config.name = "backend";
  config.retries.max = 0;
  config.pool_max_per_endpoint = 0;  // nothing pooled: the upstream stops at once
  std::vector<std::unique_ptr<upstream::Endpoint>> eps;
  eps.push_back(std::make_unique<upstream::Endpoint>());
  eps[0]->address = {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)};
  eps[0]->host_header = "127.0.0.1";
  auto route = std::make_shared<upstream::ProxyRoute>();
  route->cluster = std::make_shared<upstream::Cluster>(
      config, std::move(eps), system_steady_clock(), upstream::ClusterMetrics{});
  route->timeout = 300ms;
  upstream::UpstreamFaults faults;
  route->faults = &faults;
  ProxyHandler handler(route);
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
  origin.stop();
  origin_thread.join();
}

}  // namespace
}  // namespace sluice::gateway::proxy
