// The proxy's fast reader of upstream answers: what it takes, what it leaves to Beast's parser,
// and the client's head it builds (hop-by-hop fields out, Via in).
#include "gateway/proxy/simple_answer.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/http_message.hpp"

namespace sluice::gateway::proxy {
namespace {

constexpr std::uint64_t kMax = 64 * 1024;

std::string nginx_answer(std::string_view extra_fields = "", std::string_view body = "ok") {
  return "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 18:00:00 GMT\r\n"
         "Content-Type: application/octet-stream\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: keep-alive\r\n" +
         std::string(extra_fields) + "\r\n" + std::string(body);
}

std::string field(const detail::ResponseMessage& m, std::string_view name) {
  auto it = m.find(boost::beast::string_view(name.data(), name.size()));
  return it == m.end() ? "<none>" : std::string(it->value());
}

TEST(SimpleAnswer, ReadsTheCommonAnswerAndBuildsTheClientHead) {
  const std::string bytes = nginx_answer();
  SimpleAnswer a;
  ASSERT_TRUE(parse_simple_answer(bytes, kMax, a));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.version, 11u);
  EXPECT_TRUE(a.keep_alive);
  EXPECT_EQ(a.body_bytes, 2u);
  EXPECT_EQ(bytes.substr(a.head_bytes), "ok");

  detail::ResponseMessage m;
  m.set(boost::beast::http::field::age, "stale");  // replaced, not merged
  apply_simple_answer(a, m);
  EXPECT_EQ(m.result_int(), 200u);
  EXPECT_EQ(field(m, "Server"), "nginx/1.22.1");
  EXPECT_EQ(field(m, "content-type"), "application/octet-stream");
  EXPECT_EQ(field(m, "Via"), "1.1 sluice");
  EXPECT_EQ(field(m, "Connection"), "<none>");
  EXPECT_EQ(field(m, "Content-Length"), "<none>") << "the server frames the body it writes";
  EXPECT_EQ(field(m, "Age"), "<none>");
  // Known names keep their enum (the server's own Server/Date logic keys on it).
  EXPECT_EQ(m.find(boost::beast::http::field::server)->value(), "nginx/1.22.1");
}

TEST(SimpleAnswer, DropsHopByHopFieldsAndAppendsToVia) {
  const std::string bytes = nginx_answer(
      "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nProxy-Foo: 1\r\nTE: trailers\r\n"
      "Trailer: X\r\nUpgrade: h2c\r\nVia: 1.0 edge\r\nX-Kept:  spaced value \t\r\n");
  SimpleAnswer a;
  ASSERT_TRUE(parse_simple_answer(bytes, kMax, a));
  detail::ResponseMessage m;
  apply_simple_answer(a, m);
  for (const char* gone :
       {"Keep-Alive", "Proxy-Authenticate", "Proxy-Foo", "TE", "Trailer", "Upgrade"})
    EXPECT_EQ(field(m, gone), "<none>") << gone;
  EXPECT_EQ(field(m, "Via"), "1.0 edge, 1.1 sluice");
  EXPECT_EQ(field(m, "X-Kept"), "spaced value");
  EXPECT_EQ(m.count(boost::beast::http::field::via), 1u);
}

TEST(SimpleAnswer, KeepAliveFollowsVersionAndConnection) {
  SimpleAnswer a;
  ASSERT_TRUE(parse_simple_answer(
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", kMax, a));
  EXPECT_FALSE(a.keep_alive);
  ASSERT_TRUE(parse_simple_answer("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", kMax, a));
  EXPECT_FALSE(a.keep_alive);
  EXPECT_EQ(a.version, 10u);
  ASSERT_TRUE(parse_simple_answer(
      "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", kMax, a));
  EXPECT_TRUE(a.keep_alive);
  ASSERT_TRUE(parse_simple_answer("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", kMax, a));
  EXPECT_EQ(a.status, 503);
}

// Each of these goes to Beast's parser, which frames, streams or rejects it.
TEST(SimpleAnswer, LeavesEverythingElseToBeast) {
  const std::string long_value(3000, 'v');
  const std::vector<std::string> others = {
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",  // no length
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
      "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok",
      std::string("HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok", 50),
      "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
      "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",            // head not complete
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",      // body not all here
      "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\nok",  // over the buffered size: streamed
      "HTTP/1.1 200 OK\r\nX-Big: " + long_value + "\r\nContent-Length: 0\r\n\r\n",
      "GARBAGE\r\n\r\n",
  };
  for (const auto& bytes : others) {
    SimpleAnswer a;
    EXPECT_FALSE(parse_simple_answer(bytes, kMax, a)) << bytes;
  }
}

TEST(SimpleAnswer, TooManyFieldsGoToBeast) {
  std::string many;
  for (std::size_t i = 0; i <= SimpleAnswer::kMaxFields; ++i)
    many += "X-" + std::to_string(i) + ": v\r\n";
  SimpleAnswer a;
  EXPECT_FALSE(parse_simple_answer(nginx_answer(many), kMax, a));
}

}  // namespace
}  // namespace sluice::gateway::proxy
