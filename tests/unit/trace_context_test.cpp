#include "observe/trace_context.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sluice::observe {
namespace {

constexpr const char* kTraceId = "0af7651916cd43dd8448eb211c80319c";
constexpr const char* kParentId = "b7ad6b7169203331";

std::string tp(const std::string& version, const std::string& trace, const std::string& parent,
               const std::string& flags) {
  return version + "-" + trace + "-" + parent + "-" + flags;
}

TEST(TraceParent, ParsesTheSpecExample) {
  const auto p = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version, 0);
  EXPECT_EQ(to_hex(p->trace_id), kTraceId);
  EXPECT_EQ(to_hex(p->parent_id), kParentId);
  EXPECT_EQ(p->flags, 1);
  EXPECT_TRUE(p->sampled());
  EXPECT_EQ(format_traceparent(*p), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
}

TEST(TraceParent, NotSampledAndUnknownFlagsAreKept) {
  auto p = parse_traceparent(tp("00", kTraceId, kParentId, "00"));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->sampled());
  p = parse_traceparent(tp("00", kTraceId, kParentId, "ff"));
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->sampled());
  EXPECT_EQ(p->flags, 0xff);
  p = parse_traceparent(tp("00", kTraceId, kParentId, "02"));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->sampled());
}

struct Case {
  const char* name;
  std::string value;
  bool valid;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class TraceParentTable : public ::testing::TestWithParam<Case> {};

TEST_P(TraceParentTable, Parses) {
  const Case& c = GetParam();
  EXPECT_EQ(parse_traceparent(c.value).has_value(), c.valid) << c.name << ": " << c.value;
}

const std::string kValid = tp("00", kTraceId, kParentId, "01");
const std::string kFuture = tp("cc", kTraceId, kParentId, "01");

INSTANTIATE_TEST_SUITE_P(
    W3C, TraceParentTable,
    ::testing::Values(
        Case{"valid", kValid, true}, Case{"leading OWS", " \t" + kValid, true},
        Case{"trailing OWS", kValid + " \t", true}, Case{"empty", "", false},
        Case{"only OWS", "  ", false}, Case{"one char short", kValid.substr(0, 54), false},
        Case{"v00 one char long", kValid + "0", false},
        Case{"v00 with extra field", kValid + "-what-the-future-will-be-like", false},
        Case{"v00 with trailing dash", kValid + "-", false},
        Case{"version ff", tp("ff", kTraceId, kParentId, "01"), false},
        Case{"version upper hex", tp("0A", kTraceId, kParentId, "01"), false},
        Case{"version non hex", tp("0g", kTraceId, kParentId, "01"), false},
        Case{"version 1 char", tp("0", kTraceId, kParentId, "01") + "0", false},
        Case{"version 3 chars", tp("000", kTraceId, kParentId, "0"), false},
        Case{"future version", kFuture, true},
        Case{"future version 01", tp("01", kTraceId, kParentId, "01"), true},
        Case{"future version fe", tp("fe", kTraceId, kParentId, "01"), true},
        Case{"future version extra field", kFuture + "-what-the-future-will-be-like", true},
        Case{"future version extra without dash", kFuture + ".what-the-future-will-be-like", false},
        Case{"future version extra char", kFuture + "0", false},
        Case{"future version short", kFuture.substr(0, 54), false},
        Case{"future version bad trace id",
             tp("cc", "0af7651916cd43dd8448eb211c80319G", kParentId, "01") + "-x", false},
        Case{"trace id upper hex", tp("00", "0AF7651916CD43DD8448EB211C80319C", kParentId, "01"),
             false},
        Case{"trace id one upper", tp("00", "0af7651916cd43dd8448eb211c80319C", kParentId, "01"),
             false},
        Case{"trace id all zero", tp("00", std::string(32, '0'), kParentId, "01"), false},
        Case{"trace id non hex", tp("00", "0af7651916cd43dd8448eb211c8031zz", kParentId, "01"),
             false},
        Case{"trace id short", tp("00", std::string(kTraceId).substr(1), kParentId, "01") + "0",
             false},
        Case{"trace id long", tp("00", std::string(kTraceId) + "0", kParentId, "0"), false},
        Case{"parent id upper hex", tp("00", kTraceId, "B7AD6B7169203331", "01"), false},
        Case{"parent id all zero", tp("00", kTraceId, std::string(16, '0'), "01"), false},
        Case{"parent id non hex", tp("00", kTraceId, "b7ad6b716920333.", "01"), false},
        Case{"parent id short", tp("00", kTraceId, "b7ad6b716920333", "01") + "0", false},
        Case{"flags upper hex", tp("00", kTraceId, kParentId, "0A"), false},
        Case{"flags non hex", tp("00", kTraceId, kParentId, ".0"), false},
        Case{"flags non hex 2", tp("00", kTraceId, kParentId, "0."), false},
        Case{"flags 1 char", tp("00", kTraceId, kParentId, "1"), false},
        Case{"flags 3 chars", tp("00", kTraceId, kParentId, "010"), false},
        Case{"separator underscore", std::string("00_") + kTraceId + "-" + kParentId + "-01",
             false},
        Case{"separator 2 wrong", std::string("00-") + kTraceId + "." + kParentId + "-01", false},
        Case{"separator 3 wrong", std::string("00-") + kTraceId + "-" + kParentId + "_01", false},
        Case{"internal space",
             std::string("00- ") + std::string(kTraceId).substr(1) + "-" + kParentId + "-01",
             false},
        Case{"inner OWS around dash", std::string("00 -") + kTraceId + "-" + kParentId + "-01",
             false}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string n = info.param.name;
      for (auto& c : n) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

TEST(TraceParent, FutureVersionIsReformattedAsVersion00) {
  const auto p = parse_traceparent(kFuture + "-extra");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version, 0xcc);
  EXPECT_EQ(format_traceparent(*p), kValid);
}

TEST(TraceState, ParsesMembersInOrder) {
  const auto ts = parse_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  ASSERT_TRUE(ts);
  ASSERT_EQ(ts->members().size(), 2u);
  EXPECT_EQ(ts->members()[0].first, "rojo");
  EXPECT_EQ(ts->members()[0].second, "00f067aa0ba902b7");
  EXPECT_EQ(ts->members()[1].first, "congo");
  EXPECT_EQ(*ts->get("congo"), "t61rcWkgMzE");
  EXPECT_EQ(format_tracestate(*ts), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

TEST(TraceState, OwsAndEmptyMembers) {
  const auto ts = parse_tracestate(" \t foo=1 \t , \t bar=2, \t baz=3 ,, ,\t,");
  ASSERT_TRUE(ts);
  EXPECT_EQ(format_tracestate(*ts), "foo=1,bar=2,baz=3");
  const auto empty = parse_tracestate("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(parse_tracestate(" , ,"));
}

TEST(TraceState, ValueMayContainInnerSpaces) {
  const auto ts = parse_tracestate("foo=a b  c,bar= x");
  ASSERT_TRUE(ts);
  EXPECT_EQ(*ts->get("foo"), "a b  c");
  EXPECT_EQ(*ts->get("bar"), " x");
}

class TraceStateTable : public ::testing::TestWithParam<Case> {};

TEST_P(TraceStateTable, Parses) {
  const Case& c = GetParam();
  EXPECT_EQ(parse_tracestate(c.value).has_value(), c.valid) << c.name << ": " << c.value;
}

std::string members(int n) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    W3C, TraceStateTable,
    ::testing::Values(
        Case{"simple", "foo=bar", true}, Case{"key all chars", "a0_-*/z=1", true},
        Case{"key starts with digit", "0foo=bar", false},
        Case{"key starts with underscore", "_foo=bar", false},
        Case{"key upper case", "Foo=bar", false}, Case{"key with dot", "foo.bar=1", false},
        Case{"key 256 chars", std::string("a") + std::string(255, 'b') + "=1", true},
        Case{"key 257 chars", std::string("a") + std::string(256, 'b') + "=1", false},
        Case{"empty key", "=bar", false}, Case{"no equals", "foo", false},
        Case{"tenant key", "tenant@system=1", true},
        Case{"tenant starts with digit", "0tenant@system=1", true},
        Case{"tenant 241 chars", std::string(241, 't') + "@s=1", true},
        Case{"tenant 242 chars", std::string(242, 't') + "@s=1", false},
        Case{"system 14 chars", "t@" + std::string(14, 's') + "=1", true},
        Case{"system 15 chars", "t@" + std::string(15, 's') + "=1", false},
        Case{"system starts with digit", "t@0s=1", false}, Case{"empty tenant", "@system=1", false},
        Case{"empty system", "tenant@=1", false}, Case{"two at signs", "a@b@c=1", false},
        Case{"tenant with underscore start", "_t@s=1", false}, Case{"empty value", "foo=", false},
        Case{"value only space", "foo= ", false},  // OWS is trimmed: "foo=" has an empty value
        Case{"value 256 chars", "foo=" + std::string(256, 'v'), true},
        Case{"value 257 chars", "foo=" + std::string(257, 'v'), false},
        Case{"value with equals", "foo=a=b", false}, Case{"value with tab", "foo=a\tb", false},
        Case{"value with DEL", "foo=a\x7f", false},
        Case{"value with non ascii", "foo=\xc3\xa9", false},
        Case{"value with control", std::string("foo=a\x01"), false},
        Case{"value all printable", "foo=!\"#$%&'()*+-./09:;<>?@AZ[\\]^_`az{|}~", true},
        Case{"duplicate keys", "foo=1,bar=2,foo=3", false},
        Case{"duplicate tenant keys", "t@s=1,t@s=2", false}, Case{"32 members", members(32), true},
        Case{"33 members", members(33), false},
        Case{"32 members and empties", members(32) + ",,, ,", true},
        Case{"one bad member poisons all", "foo=1,BAR=2", false}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string n = info.param.name;
      for (auto& c : n) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

TEST(TraceState, TrailingSpaceIsOwsNotValue) {
  // "foo= " trims to "foo=" whose value is empty: invalid.
  EXPECT_FALSE(parse_tracestate("foo= "));
  EXPECT_FALSE(is_valid_tracestate_value("a "));
  EXPECT_TRUE(is_valid_tracestate_value(" a"));
}

TEST(TraceState, LongHeaderIsAcceptedAndTruncatedOnFormat) {
  // 20 members of 30 chars = 619 chars with commas: accepted, but only 512 are propagated.
  std::string header;
  for (int i = 0; i < 20; ++i) {
    if (i) header += ',';
    std::string key = "k" + std::to_string(i);
    header += key + "=" + std::string(29 - key.size(), 'v');
  }
  const auto ts = parse_tracestate(header);
  ASSERT_TRUE(ts);
  EXPECT_EQ(ts->members().size(), 20u);
  const std::string out = format_tracestate(*ts);
  EXPECT_LE(out.size(), 512u);
  EXPECT_EQ(out, header.substr(0, out.size()));  // right-most members removed first
  EXPECT_EQ(out.size(), 16u * 31 - 1);
}

TEST(TraceState, TruncationRemovesLargeMembersFirst) {
  std::string big = "big=" + std::string(200, 'x');  // 204 chars > 128
  std::string header = "a=1," + big;
  for (int i = 0; i < 12; ++i)
    header += ",k" + std::to_string(i) + "=" + std::string(26, 'v');
  const auto ts = parse_tracestate(header);
  ASSERT_TRUE(ts);
  EXPECT_GT(header.size(), 512u);
  const std::string out = format_tracestate(*ts);
  EXPECT_EQ(out.find("big="), std::string::npos);
  EXPECT_NE(out.find("k11="), std::string::npos);
  EXPECT_LE(out.size(), 512u);
}

TEST(TraceState, SetMovesToFrontAndCapsAt32) {
  auto ts = parse_tracestate(members(32));
  ASSERT_TRUE(ts);
  EXPECT_TRUE(ts->set("k5", "new"));
  EXPECT_EQ(ts->members().front().first, "k5");
  EXPECT_EQ(ts->members().size(), 32u);
  EXPECT_TRUE(ts->set("sluice", "x"));
  EXPECT_EQ(ts->members().size(), 32u);
  EXPECT_EQ(ts->members().front().first, "sluice");
  EXPECT_FALSE(ts->get("k31"));  // the right-most member was dropped
  EXPECT_FALSE(ts->set("Bad", "x"));
  EXPECT_FALSE(ts->set("ok", "a,b"));
  ts->erase("sluice");
  EXPECT_FALSE(ts->get("sluice"));
}

TEST(Ids, RandomIdsAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const TraceId t = random_trace_id();
    const SpanId s = random_span_id();
    ASSERT_TRUE(t.is_valid());
    ASSERT_TRUE(s.is_valid());
    seen.insert(to_hex(t));
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(Hex, RoundTripsAndRejectsUpperCase) {
  uint8_t b[2];
  EXPECT_TRUE(from_hex("a0ff", b, 2));
  EXPECT_EQ(b[0], 0xa0);
  EXPECT_EQ(b[1], 0xff);
  EXPECT_FALSE(from_hex("A0ff", b, 2));
  EXPECT_FALSE(from_hex("a0f", b, 2));
  char out[4];
  to_hex(b, 2, out);
  EXPECT_EQ(std::string(out, 4), "a0ff");
}

}  // namespace
}  // namespace sluice::observe
