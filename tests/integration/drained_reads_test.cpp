// The reads that skip the recv which would find nothing (net/drained_reads/drained_reads.hpp),
// end to end: an end of stream or a reset that came with the last bytes is still seen at once,
// on the client's side and the upstream's. "Promptly" is well under the try timeout (5 s here):
// a read left waiting for an edge that had passed would end only there, with a 504.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "support/raw_client.hpp"
#include "support/raw_upstream.hpp"
#include "support/sluice_process.hpp"

namespace {

using namespace sluice::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string proxy_to(int port) {
  return "workers: 1\nupstreams:\n  backend: { endpoints: [\"127.0.0.1:" + std::to_string(port) +
         "\"], per_try_timeout_ms: 5000 }\nroutes:\n  - name: p\n    middlewares: []\n"
         "    handler: { type: proxy, cluster: backend }\n";
}

// Reads one request head, writes `answer`, then resets the connection (SO_LINGER 0): the last
// bytes and the RST arrive together.
std::function<void(int)> answer_then_reset(std::string answer) {
  return [answer = std::move(answer)](int fd) {
    if (read_head(fd).empty()) return;
    write_all(fd, answer);
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  };
}

// Answers every request on the connection with "ok" until the client closes.
void keep_alive_ok(int fd) {
  while (!read_head(fd).empty())
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

constexpr const char* kPartialAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial";

// One request through the gateway to `up`: a 502 (bad_gateway), well before the try timeout.
void expect_prompt_502(RawUpstream& up, const char* what) {
  SluiceProcess gw(proxy_to(up.port()));
  httplib::Client c("127.0.0.1", gw.port());
  c.set_read_timeout(10, 0);
  const auto start = Clock::now();
  auto r = c.Get("/x");
  const auto took = Clock::now() - start;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"], "bad_gateway");
  EXPECT_LT(took, 2s) << "the " << what << " that came with the partial answer was seen late";
}

TEST(DrainedReads, UpstreamResetMidAnswerIs502Promptly) {
  RawUpstream up(answer_then_reset(kPartialAnswer));
  expect_prompt_502(up, "reset");
}

TEST(DrainedReads, UpstreamFinMidAnswerIs502Promptly) {
  RawUpstream up(answer_then_close(kPartialAnswer));
  expect_prompt_502(up, "FIN");
}

// A whole keep-alive answer followed at once by a reset: the answer is delivered (the pooled
// connection is found dead at the next request, which is retried or connects anew).
TEST(DrainedReads, UpstreamResetRightAfterAWholeAnswerStillDeliversIt) {
  RawUpstream up(answer_then_reset("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwhole"));
  SluiceProcess gw(proxy_to(up.port()));
  httplib::Client c("127.0.0.1", gw.port());
  c.set_read_timeout(10, 0);
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    auto r = c.Get("/x");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200) << i;
    EXPECT_EQ(r->body, "whole") << i;
    EXPECT_LT(Clock::now() - start, 2s) << i;
  }
}

// The client sends its request and half-closes at once (the request's last bytes and the FIN
// arrive together): it is answered, then the connection is closed promptly.
TEST(DrainedReads, ClientHalfCloseAfterARequestIsAnsweredThenClosed) {
  RawUpstream up(keep_alive_ok);
  SluiceProcess gw(proxy_to(up.port()));
  RawClient c(gw.port());
  ASSERT_TRUE(c.send_and_close_write("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  const auto answer = c.read_responses(1, 3s);
  EXPECT_EQ(status_codes(answer), std::vector<int>{200}) << answer;
  const auto start = Clock::now();
  EXPECT_TRUE(c.closed_by_peer(3s));
  EXPECT_LT(Clock::now() - start, 1s);
}

// A client that sends a request and resets: the gateway goes on serving (the reset is seen by
// the write of the answer or by the next read, not left to the idle timeout).
TEST(DrainedReads, ClientResetAfterARequestLeavesTheGatewayServing) {
  RawUpstream up(keep_alive_ok);
  SluiceProcess gw(proxy_to(up.port()));
  for (int i = 0; i < 20; ++i) {
    RawClient c(gw.port());
    ASSERT_TRUE(c.send(i % 2 ? "GET /x HTTP/1.1\r\nHost: t\r\n\r\n" : "GET /x HTTP/1.1\r\nHo"));
    c.reset();
  }
  RawClient c(gw.port());
  ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(status_codes(c.read_responses(1, 3s)), std::vector<int>{200});
}

// Pipelined requests on one client connection, proxied over one pooled upstream connection:
// every read after an answer went out waits for epoll, and none is left waiting.
TEST(DrainedReads, PipelinedRequestsOverAReusedUpstreamConnection) {
  RawUpstream up(keep_alive_ok);
  SluiceProcess gw(proxy_to(up.port()));
  RawClient c(gw.port());
  std::string three;
  for (int i = 0; i < 3; ++i)
    three += "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(c.send(three));
    EXPECT_EQ(status_codes(c.read_responses(3, 3s)), (std::vector<int>{200, 200, 200})) << round;
  }
  EXPECT_EQ(up.accepted(), 1) << "one keep-alive upstream connection for all fifteen";
}

}  // namespace
