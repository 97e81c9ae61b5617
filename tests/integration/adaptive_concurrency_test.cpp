// adaptive_concurrency through the real binary, in front of an upstream that serves 4 requests
// at once in 20 ms each and queues the rest: the measured limit settles near what the upstream
// sustains, the excess is shed as concurrency_limited and answered by a fallback, and the figures
// are on the admin API.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "support/capacity_upstream.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

TEST(AdaptiveConcurrency, ShedsBeyondWhatTheUpstreamSustainsAndShowsItsLimit) {
  CapacityUpstream upstream(4, 20);
  ASSERT_GT(upstream.port(), 0);
  const int port = upstream.port();
  SluiceProcess gw(R"(
workers: 2
upstreams:
  slow: { endpoints: ["127.0.0.1:)" +
                   std::to_string(port) + R"("], retries: { max: 0 } }
routes:
  - name: api
    match: { prefix: / }
    middlewares:
      - type: fallback
        fallbacks:
          - { name: shed, kind: static, when: { concurrency_limited: true }, status: 200,
              body: "later" }
      - type: adaptive_concurrency
        update_interval_ms: 50
        min_rtt_requests: 10
        min_concurrency: 2
        max_concurrency: 64
    handler: { type: proxy, cluster: slow }
)");
  std::atomic<int> fresh{0}, shed{0}, other{0};
  std::vector<std::thread> clients;
  const auto until = std::chrono::steady_clock::now() + 3s;
  for (int i = 0; i < 24; ++i) {
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", gw.port());
      while (std::chrono::steady_clock::now() < until) {
        auto r = c.Get("/x");
        if (r && r->status == 200 && r->body == "fresh")
          ++fresh;
        else if (r && r->status == 200 && r->get_header_value("X-Sluice-Fallback") == "shed")
          ++shed;
        else
          ++other;
      }
    });
  }
  for (auto& t : clients)
    t.join();
  EXPECT_EQ(other.load(), 0) << "every request answered, fresh or by the fallback";
  EXPECT_GT(fresh.load(), 100);
  EXPECT_GT(shed.load(), 0) << "24 clients against 4 upstream threads: the excess is shed";

  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto listed = nlohmann::json::parse(admin.Get("/adaptive_concurrency")->body);
  ASSERT_EQ(listed["middlewares"].size(), 1u) << listed.dump();
  const auto& m = listed["middlewares"][0];
  std::printf("fresh %d, shed %d; controller %s\n", fresh.load(), shed.load(), m.dump().c_str());
  EXPECT_GE(m["min_rtt_ms"].get<double>(), 19.0) << m.dump();
  EXPECT_GE(m["limit"].get<int>(), 2) << m.dump();
  // The limit settles below the offered concurrency only if the controller's min RTT is the
  // upstream's (20 ms): it measures it once, with 10 requests at concurrency 2, and counts up to
  // min RTT x 1.25 as "not slower". Measured on a starved machine (85 ms once beside a CPU hog),
  // queueing up to 106 ms looks healthy and a limit of 32 is what the controller should reach;
  // that run cannot judge the limit (the shedding above is still checked).
  if (m["min_rtt_ms"].get<double>() < 40.0) {
    EXPECT_LT(m["limit"].get<int>(), 24) << "below the offered concurrency: " << m.dump();
  } else {
    std::printf("the min RTT was measured at %.1f ms (the upstream's is 20 ms): limit not judged\n",
                m["min_rtt_ms"].get<double>());
  }
  auto metrics = admin.Get("/metrics")->body;
  EXPECT_NE(metrics.find("sluice_adaptive_concurrency_limit{"), std::string::npos);
  EXPECT_NE(metrics.find("sluice_adaptive_concurrency_rejected_total{"), std::string::npos);
}

}  // namespace
}  // namespace sluice::testing
