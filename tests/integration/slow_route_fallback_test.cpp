// The seed's P0 through the real binary: an upstream that turns slow without failing; once the
// route's p99 is above the threshold, a VIP gets the last good response at once (the upstream
// is not called) while other users still wait for the upstream.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "support/served_upstream.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

TEST(SlowRouteFallback, VipsGetTheSnapshotBeforeTheHandlerOnceTheRouteIsSlow) {
  httplib::Server upstream;
  upstream.new_task_queue = [] { return new httplib::ThreadPool(8); };
  std::atomic<int> delay_ms{0};
  std::atomic<int> calls{0};
  upstream.Get("/.*", [&](const httplib::Request&, httplib::Response& r) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
    r.set_content("v" + std::to_string(calls.load()), "text/plain");
  });
  ServedUpstream served(upstream);
  const int port = served.port();

  SluiceProcess gw(R"(
upstreams:
  backend: { endpoints: ["127.0.0.1:)" +
                   std::to_string(port) + R"("] }
routes:
  - name: api
    match: { prefix: / }
    middlewares:
      - type: fallback
        fallbacks:
          - name: p0
            kind: cache_snapshot
            when: { before_handler: true, route_p99_above_ms: 200,
                    user_tier: { header: X-User-Tier, in: [vip] } }
          - { name: sorry, kind: static, status: 503, body: later, when: { status: [5xx] } }
    handler: { type: proxy, cluster: backend }
)");
  httplib::Client c("127.0.0.1", gw.port());
  c.set_read_timeout(5, 0);
  const httplib::Headers vip = {{"X-User-Tier", "vip"}};

  auto fast = c.Get("/item", vip);  // the route is fast: the VIP goes to the upstream
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->body, "v1");
  EXPECT_EQ(fast->get_header_value("X-Sluice-Fallback"), "");

  delay_ms = 1000;  // slow, and still 200
  for (int i = 0; i < 3; ++i) {
    auto slow = c.Get("/item");
    ASSERT_TRUE(slow);
    EXPECT_EQ(slow->status, 200);
  }
  const int before = calls.load();  // 4: the last stored snapshot is "v4"

  const auto t0 = std::chrono::steady_clock::now();
  auto p0 = c.Get("/item", vip);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(p0);
  EXPECT_EQ(p0->status, 200);
  EXPECT_EQ(p0->get_header_value("X-Sluice-Fallback"), "p0");
  EXPECT_EQ(p0->body, "v" + std::to_string(before)) << "the last good response";
  EXPECT_LT(took, 700ms) << "answered before the upstream's 1000 ms";
  EXPECT_EQ(calls.load(), before) << "the upstream is not called for the VIP";

  auto other = c.Get("/item", {{"X-User-Tier", "free"}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->get_header_value("X-Sluice-Fallback"), "");
  EXPECT_EQ(calls.load(), before + 1) << "other users still reach the upstream";
}

}  // namespace
}  // namespace sluice::testing
