#include "observe/json_escape.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace sluice::observe {
namespace {

// Parses `"<escaped>"` and returns the decoded string.
std::string round_trip(std::string_view in) {
  std::string doc;
  append_json_string(doc, in);
  return nlohmann::json::parse(doc).get<std::string>();
}

TEST(JsonEscape, PlainAsciiIsCopied) {
  EXPECT_EQ(json_escape("GET /users/42?x=1 HTTP/1.1"), "GET /users/42?x=1 HTTP/1.1");
  EXPECT_EQ(json_escape(""), "");
}

TEST(JsonEscape, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(json_escape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(json_escape("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
  EXPECT_EQ(json_escape(std::string_view("\0\x01\x1f\x7f", 4)), "\\u0000\\u0001\\u001f\\u007f");
  EXPECT_EQ(json_escape("/"), "/");
}

TEST(JsonEscape, ValidUtf8IsKept) {
  const std::string s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf";
  EXPECT_EQ(json_escape(s), s);
  EXPECT_EQ(round_trip(s), s);
}

TEST(JsonEscape, InvalidUtf8BecomesReplacementPerMaximalSubpart) {
  const std::string r = "\\ufffd";
  struct Case {
    std::string in;
    std::string out;
  };
  const std::vector<Case> cases = {
      {"\x80", r},                          // lone continuation
      {"\xbf\x80", r + r},                  // two lone continuations
      {"\xc0\xaf", r + r},                  // overlong '/' (C0 never valid)
      {"\xc1\xbf", r + r},                  // overlong
      {"\xe0\x80\xaf", r + r + r},          // overlong 3-byte: E0 then 80 not in A0..BF
      {"\xf0\x80\x80\xaf", r + r + r + r},  // overlong 4-byte
      {"\xed\xa0\x80", r + r + r},          // surrogate U+D800
      {"\xed\xbf\xbf", r + r + r},          // surrogate U+DFFF
      {"\xf4\x90\x80\x80", r + r + r + r},  // above U+10FFFF
      {"\xf5\x80\x80\x80", r + r + r + r},  // F5 never valid
      {"\xff", r},
      {"\xfe", r},
      {"\xc3", r},                                   // truncated at end
      {"\xe2\x82", r},                               // truncated 3-byte: one maximal subpart
      {"\xf0\x9f\x98", r},                           // truncated 4-byte
      {"\xe2\x82x", r + "x"},                        // interrupted by ASCII
      {"\xe2\x82\xe2\x82\xac", r + "\xe2\x82\xac"},  // interrupted by a valid sequence
      {"a\xc3(b", "a" + r + "(b"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(json_escape(c.in), c.out) << "input size " << c.in.size();
    EXPECT_NO_THROW(round_trip(c.in));
  }
}

TEST(JsonEscape, HostileCorpusAlwaysParses) {
  const std::vector<std::string> corpus = {
      "\"",
      "\\",
      "\\\"",
      "\"}",
      "\"},{\"x\":1",
      std::string(1, '\0'),
      std::string("a\0b", 3),
      "\x7f",
      "\r\n\r\n",
      "\x1b[31mred\x1b[0m",
      "\xed\xa0\x80\xed\xb0\x80",
      "\xc0\x80",
      "\xe0\x80\x80",
      "\xf8\x88\x80\x80\x80",
      "\xfc\x84\x80\x80\x80\x80",
      "\xef\xbf\xbe",
      "\xef\xbb\xbf",
      "\\u0000",
      "\\ud800",
      "</script>",
      "\xe2\x80\xa8",
  };
  for (const auto& s : corpus) {
    std::string doc = "{\"k\":";
    append_json_string(doc, s);
    doc += "}";
    EXPECT_TRUE(nlohmann::json::accept(doc)) << doc;
    EXPECT_NO_THROW(auto j = nlohmann::json::parse(doc)) << doc;
  }
}

TEST(JsonEscape, RandomBytesAlwaysParseAndValidTextSurvives) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> len(0, 64);
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<std::size_t>(len(rng)), '\0');
    for (auto& c : s)
      c = static_cast<char>(byte(rng));
    std::string decoded;
    ASSERT_NO_THROW(decoded = round_trip(s));
    // Whatever nlohmann accepts as UTF-8 must equal the input when nothing was replaced.
    if (json_escape(s).find("\\ufffd") == std::string::npos) {
      ASSERT_EQ(decoded, s);
    }
  }
}

TEST(JsonEscape, AppendsWithoutClobbering) {
  std::string out = "prefix:";
  append_json_escaped(out, "a\"b");
  EXPECT_EQ(out, "prefix:a\\\"b");
}

}  // namespace
}  // namespace sluice::observe
