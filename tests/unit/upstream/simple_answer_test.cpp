// The proxy's fast reader of upstream answers: what it takes, what it leaves to Beast's parser,
// and the client's head it builds (hop-by-hop fields out, Via in).
#include "upstream/simple_answer.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/http_message.hpp"
#include "upstream/forwarding.hpp"

namespace sluice::upstream {
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
  // Beast reads Proxy-Connection as Connection; so does the fast reader (tests/fuzz found it).
  ASSERT_TRUE(parse_simple_answer(
      "HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 0\r\n\r\n", kMax, a));
  EXPECT_FALSE(a.keep_alive);
  ASSERT_TRUE(parse_simple_answer("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", kMax, a));
  EXPECT_EQ(a.status, 503);
}

// An HTTP/1.0 answer saying both keep-alive and close: Beast's keep_alive() says keep; the
// proxy reads it through keeps_alive(), which closes, as the fast reader does (simple_answer
// fuzz finding 5: the Beast path pooled a connection the upstream said it would close).
TEST(SimpleAnswer, Http10CloseWinsOverKeepAliveOnBothPaths) {
  for (const std::string fields :
       {"Connection: keep-alive, close\r\n", "Connection: close, keep-alive\r\n",
        "Connection: keep-alive\r\nProxy-Connection: close\r\n"}) {
    const std::string bytes = "HTTP/1.0 200 OK\r\n" + fields + "Content-Length: 0\r\n\r\n";
    SimpleAnswer a;
    ASSERT_TRUE(parse_simple_answer(bytes, kMax, a)) << fields;
    EXPECT_FALSE(a.keep_alive) << fields;
    boost::beast::http::response_parser<boost::beast::http::string_body> p;
    boost::beast::error_code ec;
    p.put(boost::asio::buffer(bytes), ec);
    ASSERT_FALSE(ec) << fields;
    EXPECT_TRUE(p.keep_alive()) << "Beast itself: " << fields;
    EXPECT_FALSE(keeps_alive(p.get(), p.get().version(), p.keep_alive())) << fields;
  }
  // keep-alive alone still keeps an HTTP/1.0 connection, and 1.1 is left to Beast.
  boost::beast::http::response_parser<boost::beast::http::string_body> p;
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(
            std::string("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")),
        ec);
  ASSERT_FALSE(ec);
  EXPECT_TRUE(keeps_alive(p.get(), p.get().version(), p.keep_alive()));
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
      // Beast refuses a Proxy-Connection that is not a token list (bad value), as for Connection.
      "HTTP/1.1 200 OK\r\nProxy-Connection: ke0 ed\r\nContent-Length: 2\r\n\r\nok",
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

// Differential check against Beast, the careful path: whenever the fast reader takes bytes,
// Beast must read them as the same answer — status, body length, bytes used, keep-alive, and the
// same end-to-end fields in order. Random edits (replace, insert, delete a byte) of valid answers,
// seeded so a failure repeats.
TEST(SimpleAnswer, AgreesWithBeastOnRandomlyEditedAnswers) {
  namespace http = boost::beast::http;
  const std::vector<std::string> seeds = {
      nginx_answer(),
      nginx_answer("Keep-Alive: timeout=5\r\nVia: 1.0 edge\r\nX-A: b, c\r\n", "hello"),
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  };
  const std::string alphabet = std::string("\r\n :\t\x01\x7f\x80") + "aZ09-,;\"/";
  std::mt19937 rng(20261125);
  int taken = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string b = seeds[rng() % seeds.size()];
    for (unsigned edits = 1 + rng() % 3; edits > 0 && !b.empty(); --edits) {
      const std::size_t at = rng() % b.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          b[at] = c;
          break;
        case 1:
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          b.erase(at, 1);
      }
    }
    SimpleAnswer a;
    if (!parse_simple_answer(b, kMax, a)) continue;
    ++taken;
    http::response_parser<http::string_body> p;
    p.eager(true);
    boost::beast::error_code ec;
    const std::size_t used = p.put(boost::asio::buffer(b), ec);
    ASSERT_FALSE(ec) << ec.message() << " for\n" << b;
    ASSERT_TRUE(p.is_done()) << b;
    EXPECT_EQ(used, a.head_bytes + a.body_bytes) << b;
    EXPECT_EQ(static_cast<int>(p.get().result_int()), a.status) << b;
    EXPECT_EQ(p.get().body().size(), a.body_bytes) << b;
    EXPECT_EQ(p.keep_alive(), a.keep_alive) << b;
    auto& beast_fields = p.get().base();
    strip_hop_by_hop(beast_fields);
    std::vector<std::pair<std::string, std::string>> theirs, ours;
    for (const auto& f : beast_fields)
      if (f.name() != http::field::content_length) theirs.emplace_back(f.name_string(), f.value());
    for (std::size_t k = 0; k < a.field_count; ++k) {
      const auto& f = a.fields[k];
      ours.emplace_back(std::string(a.head.data() + f.name_at, f.name_size),
                        std::string(a.head.data() + f.value_at, f.value_size));
    }
    EXPECT_EQ(ours, theirs) << b;
  }
  EXPECT_GT(taken, 3000) << "the edits should leave many answers the fast reader takes";
}

// The reader looks up the common names itself (common_field); every name, in any case, and every
// near miss of one (a character replaced by another token character) must get Beast's own code.
TEST(SimpleAnswer, FieldCodesAreBeastsForCommonNamesTheirCasesAndNearMisses) {
  namespace http = boost::beast::http;
  const std::vector<std::string> names = {"Date",
                                          "Server",
                                          "Content-Type",
                                          "Cache-Control",
                                          "ETag",
                                          "Last-Modified",
                                          "Vary",
                                          "Via",
                                          "Expires",
                                          "Set-Cookie",
                                          "X-A",
                                          "Content-Language",
                                          "Trailer",
                                          "Age",
                                          "Connection",
                                          "Keep-Alive",
                                          "Content-Length",
                                          "Transfer-Encoding",
                                          "Vary2",
                                          "Datex"};
  const std::string replacements = "aZq0-_.^~`|!x";
  std::mt19937 rng(20261207);
  int checked = 0;
  for (const auto& name : names) {
    std::vector<std::string> variants = {name};
    for (int k = 0; k < 4; ++k) {  // random case
      std::string v = name;
      for (char& c : v)
        if (std::isalpha(static_cast<unsigned char>(c)) && rng() % 2 == 0)
          c = static_cast<char>(c ^ 0x20);
      variants.push_back(v);
    }
    for (std::size_t at = 0; at < name.size(); ++at) {
      for (char c : replacements) {
        std::string v = name;
        v[at] = c;
        variants.push_back(v);
      }
    }
    for (const auto& v : variants) {
      const std::string bytes = "HTTP/1.1 200 OK\r\n" + v + ": x\r\nContent-Length: 0\r\n\r\n";
      SimpleAnswer a;
      if (!parse_simple_answer(bytes, kMax, a)) continue;  // e.g. a near miss of Via: Vi-
      const auto expected = http::string_to_field({v.data(), v.size()});
      if (is_hop_by_hop(expected, v)) {
        EXPECT_EQ(a.field_count, 0u) << v;
        continue;
      }
      ASSERT_EQ(a.field_count, 1u) << v;
      EXPECT_EQ(a.fields[0].name, expected) << v;
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace sluice::upstream
