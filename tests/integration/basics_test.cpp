// The real binary on port 0: routes, request ids, keep-alive, pipelining, limits, malformed
// requests, graceful drain and `sluice check`.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/raw_client.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

const char* kConfig = R"(
workers: 2
limits: { max_header_bytes: 2048, max_body_bytes: 1024, header_timeout_ms: 300 }
routes:
  - name: echo
    match: { prefix: /echo }
    middlewares:
      - type: request_id
      - type: headers
        response: { set: { X-Route: echo } }
    handler: { type: echo }
  - name: only-post
    match: { exact: /submit, methods: [POST] }
    handler: { type: respond, status: 201, body: created }
  - name: hello
    match: { prefix: / }
    middlewares: [ { type: request_id } ]
    handler: { type: respond, status: 200, body: "hello\n" }
)";

TEST(Basics, ServesRoutesWithRequestIds) {
  SluiceProcess gw(kConfig);
  httplib::Client c("127.0.0.1", gw.port());
  auto r = c.Get("/anything");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello\n");
  EXPECT_EQ(r->get_header_value("X-Request-Id").size(), 32u);

  auto e = c.Get("/echo/x?y=1", {{"X-Request-Id", "my-id-1"}});
  ASSERT_TRUE(e);
  auto body = nlohmann::json::parse(e->body);
  EXPECT_EQ(body["path"], "/echo/x");
  EXPECT_EQ(body["query"], "y=1");
  EXPECT_EQ(body["request_id"], "my-id-1");
  EXPECT_EQ(e->get_header_value("X-Request-Id"), "my-id-1");
  EXPECT_EQ(e->get_header_value("X-Route"), "echo");

  auto forged = c.Get("/echo", {{"X-Request-Id", "bad id with spaces"}});
  ASSERT_TRUE(forged);
  EXPECT_NE(forged->get_header_value("X-Request-Id"), "bad id with spaces");

  auto p = c.Post("/submit", "x", "text/plain");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 201);
  auto g = c.Get("/submit");  // method does not match: falls through to hello
  ASSERT_TRUE(g);
  EXPECT_EQ(g->body, "hello\n");
}

TEST(Basics, KeepAliveAndPipelining) {
  SluiceProcess gw(kConfig);
  RawClient client(gw.port());
  std::string req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string echo = "GET /echo/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(client.send(req + echo + req));
  auto out = client.read_responses(3);
  EXPECT_EQ(status_codes(out), (std::vector<int>{200, 200, 200}));
  auto first_echo = out.find("/echo/1");
  auto hello1 = out.find("hello");
  auto hello2 = out.find("hello", first_echo);
  EXPECT_LT(hello1, first_echo) << "responses in request order";
  EXPECT_NE(hello2, std::string::npos);
  ASSERT_TRUE(client.send(req));  // the connection is still usable
  EXPECT_EQ(status_codes(client.read_responses(4)).size(), 4u);
}

TEST(Basics, LimitsAnswerWithTheRightStatus) {
  SluiceProcess gw(kConfig);
  {
    RawClient c(gw.port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
    EXPECT_EQ(status_codes(c.read_responses(1)), std::vector<int>{431});
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawClient c(gw.port());
    c.send("POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    EXPECT_EQ(status_codes(c.read_responses(1)), std::vector<int>{413});
  }
  {
    RawClient c(gw.port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n");  // never finishes the headers
    EXPECT_EQ(status_codes(c.read_responses(1, std::chrono::seconds(3))), std::vector<int>{408});
    EXPECT_TRUE(c.closed_by_peer());
  }
}

TEST(Basics, MalformedRequestsGet400AndTheServerStaysSane) {
  SluiceProcess gw(kConfig);
  const std::vector<std::string> bad = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",  // no Host
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
  };
  for (const auto& b : bad) {
    RawClient c(gw.port());
    c.send(b);
    EXPECT_EQ(status_codes(c.read_responses(1)), std::vector<int>{400}) << b;
    EXPECT_TRUE(c.closed_by_peer()) << b;
  }
  httplib::Client ok("127.0.0.1", gw.port());
  auto r = ok.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(Basics, ChunkedRequestBodyAndHead) {
  SluiceProcess gw(kConfig);
  RawClient c(gw.port());
  c.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  auto out = c.read_responses(1);
  EXPECT_NE(out.find("\"body\":\"hello world\""), std::string::npos) << out;
  RawClient h(gw.port());
  h.send("HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(h.closed_by_peer());
}

// The FIN arrives with the requests (one TCP edge for both): the server must still see the end of
// the stream once it answered, not wait for the keep-alive idle timeout (60 s).
TEST(Basics, ClientHalfClosingAfterItsRequestsIsAnsweredAndClosedAtOnce) {
  SluiceProcess gw(kConfig);
  RawClient c(gw.port());
  c.send_and_close_write("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_codes(c.read_responses(2)), (std::vector<int>{200, 200}));
  EXPECT_TRUE(c.closed_by_peer(std::chrono::seconds(2)));
}

// The 413 goes out while the client is still sending its 4 MiB body. Closing at once would make
// the kernel reset the connection (unread input), failing the client's send and possibly losing
// the answer; the server half-closes and drops the rest of the body instead (lingering close).
TEST(Basics, AnAnswerSentWhileTheClientStillSendsReachesIt) {
  SluiceProcess gw(kConfig);
  RawClient c(gw.port());
  const std::string body(4 << 20, 'x');
  auto sent = std::async(std::launch::async, [&] {
    return c.send("POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  EXPECT_EQ(status_codes(c.read_responses(1)), std::vector<int>{413});
  EXPECT_TRUE(sent.get()) << "the rest of the body was read and dropped, not reset";
}

TEST(Basics, GracefulDrainFinishesInFlightAndExitsZero) {
  SluiceProcess gw(kConfig);
  RawClient idle(gw.port());  // an idle keep-alive connection must not hold the drain
  EXPECT_EQ(gw.stop(SIGTERM), 0);
  EXPECT_NE(gw.log().find("drained"), std::string::npos) << gw.log();
}

TEST(Basics, APortInUseIsAnErrorNotASharedPort) {
  SluiceProcess gw(kConfig);
  TempDir dir;
  auto second = dir.write("second.yaml", "listen: 127.0.0.1:" + std::to_string(gw.port()) +
                                             "\nadmin: { enabled: false }\n"
                                             "routes: [ { handler: { type: echo } } ]\n");
  auto r = run_sluice("run -c " + second + " 2>&1 & p=$!; sleep 3; kill $p 2>/dev/null; wait $p");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("Address already in use"), std::string::npos) << r.output;
}

TEST(Check, GoodAndBadFiles) {
  TempDir dir;
  auto good = dir.write("good.yaml", kConfig);
  auto r = run_sluice("check -c " + good);
  EXPECT_EQ(r.status, 0) << r.output;

  auto bad = dir.write("bad.yaml", R"(listen: 127.0.0.1:0
routes:
  - name: a
    match: { prefx: /a }
    middlewares:
      - type: ratelimit
    handler: { type: respond, status: 200 }
  - name: b
    handler: { type: respnd }
)");
  r = run_sluice("check -c " + bad);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find(bad + ":4:14: routes[0].match: unknown key \"prefx\" (did you mean "
                                "\"prefix\"?)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(bad + ":6:15: routes[0].middlewares[0].type: unknown middleware type "
                                "\"ratelimit\""),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(bad + ":9:22: routes[1].handler.type: unknown handler type \"respnd\" "
                                "(did you mean \"respond\"?)"),
            std::string::npos)
      << r.output;

  auto broken = dir.write("broken.yaml", "routes: [\n  - name: a\n");
  r = run_sluice("check -c " + broken);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find(broken + ":"), std::string::npos) << r.output;

  EXPECT_EQ(run_sluice("version").status, 0);
  EXPECT_EQ(run_sluice("--help").status, 0);
  EXPECT_EQ(run_sluice("check -c /nonexistent.yaml").status, 1);
}

}  // namespace
}  // namespace sluice::testing
