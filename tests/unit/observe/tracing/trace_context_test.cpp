// W3C Trace Context Level 2 (https://www.w3.org/TR/trace-context-2/, CRD 2024-03-28), rule by
// rule; each test names the section it checks. The multi-field traceparent rule lives in
// TracingObserver and is tested there and through the binary (observability_test).
#include "observe/tracing/trace_context.hpp"

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

// §3.2.3 Examples of HTTP traceparent Headers.
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

// §3.2.2.5 trace-flags: a bit field, read bit by bit ("01" and "03" are both sampled).
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

// §3.2.2 traceparent Header Field Values (version 00 grammar, lower-case hex, all-zero ids
// forbidden) and §3.2.4 Versioning of traceparent (a higher version parses its first 55
// characters when what follows starts with '-'; version ff is invalid).
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

// §3.2.4: "Vendors MUST use these fields to construct the new traceparent field according to the
// highest version of the specification known to the implementation (in this specification it is
// 00)."
TEST(TraceParent, FutureVersionIsReformattedAsVersion00) {
  const auto p = parse_traceparent(kFuture + "-extra");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version, 0xcc);
  EXPECT_EQ(format_traceparent(*p), kValid);
}

// §3.2.2.5.2 Random Trace ID Flag: a continued trace keeps the flag as received, set or unset;
// a new trace gets it (all 16 bytes of random_trace_id() are random). §3.2.2.5.3 Other Flags:
// "Vendors MUST set those to zero". The sampled bit is sluice's own decision.
TEST(TraceParent, OutgoingFlagsKeepRandomAndClearReservedBits) {
  auto parent = parse_traceparent(tp("00", kTraceId, kParentId, "ff"));
  ASSERT_TRUE(parent);
  EXPECT_EQ(outgoing_flags(&*parent, true), kFlagSampled | kFlagRandom);
  EXPECT_EQ(outgoing_flags(&*parent, false), kFlagRandom);
  parent = parse_traceparent(tp("00", kTraceId, kParentId, "fd"));  // random bit unset
  ASSERT_TRUE(parent);
  EXPECT_EQ(outgoing_flags(&*parent, true), kFlagSampled);
  EXPECT_EQ(outgoing_flags(&*parent, false), 0);
  EXPECT_EQ(outgoing_flags(nullptr, true), kFlagSampled | kFlagRandom);
  EXPECT_EQ(outgoing_flags(nullptr, false), kFlagRandom);
}

// §3.3.2 tracestate Header Field Values, §3.3.4 examples: members are kept in header order.
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

// §3.3.2: "Spaces and horizontal tabs surrounding list-members are ignored"; "Empty and
// whitespace-only list members are allowed"; "Vendors MUST accept empty tracestate headers".
TEST(TraceState, OwsAndEmptyMembers) {
  const auto ts = parse_tracestate(" \t foo=1 \t , \t bar=2, \t baz=3 ,, ,\t,");
  ASSERT_TRUE(ts);
  EXPECT_EQ(format_tracestate(*ts), "foo=1,bar=2,baz=3");
  const auto empty = parse_tracestate("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(parse_tracestate(" , ,"));
}

// §3.3.2.2.2: "All leading spaces MUST be preserved as part of the value."
TEST(TraceState, ValueMayContainInnerAndLeadingSpaces) {
  const auto ts = parse_tracestate("foo=a b  c,bar= x");
  ASSERT_TRUE(ts);
  EXPECT_EQ(*ts->get("foo"), "a b  c");
  EXPECT_EQ(*ts->get("bar"), " x");
}

// What a header turns into: the members kept, formatted without the 512-character propagation
// limit, or "DISCARDED" when the whole header is dropped.
std::string outcome(std::string_view header) {
  const auto ts = parse_tracestate(header);
  return ts ? format_tracestate(*ts, std::size_t(-1)) : "DISCARDED";
}

struct StateCase {
  const char* name;
  std::string value;
  std::string expected;  // outcome(value)
};

void PrintTo(const StateCase& c, std::ostream* os) {
  *os << c.name;
}

class TraceStateTable : public ::testing::TestWithParam<StateCase> {};

TEST_P(TraceStateTable, KeepsTheValidMembers) {
  const StateCase& c = GetParam();
  EXPECT_EQ(outcome(c.value), c.expected) << c.name << ": " << c.value;
}

std::string members(int n) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  return s;
}

const std::string kKey256 = "a" + std::string(255, 'b');
const std::string kAtKey256 = std::string(242, 't') + "@" + std::string(13, 'v');
const std::string kValue256(256, 'v');

INSTANTIATE_TEST_SUITE_P(
    Level2, TraceStateTable,
    ::testing::Values(
        StateCase{"simple", "foo=bar", "foo=bar"},
        // §3.3.2.2.1 Key: key = ( lcalpha / DIGIT ) 0*255 ( keychar ),
        // keychar = lcalpha / DIGIT / "_" / "-"/ "*" / "/" / "@".
        StateCase{"key all chars", "a0_-*/@z=1", "a0_-*/@z=1"},
        StateCase{"key starts with digit", "0foo=bar", "0foo=bar"},
        StateCase{"key of one digit", "7=x", "7=x"},
        StateCase{"at sign at the end", "foo@=1,bar=2", "foo@=1,bar=2"},
        StateCase{"two at signs in a row", "foo@@bar=1,bar=2", "foo@@bar=1,bar=2"},
        StateCase{"two at signs apart", "foo@bar@baz=1,bar=2", "foo@bar@baz=1,bar=2"},
        StateCase{"digit before at", "0tenant@system=1", "0tenant@system=1"},
        StateCase{"digit after at", "t@0s=1", "t@0s=1"},
        // §3.3.2.2.1 "up to 256 characters": the whole key, with or without '@' (Level 1's
        // 241-character tenant and 14-character system limits are gone).
        StateCase{"key 256 chars", kKey256 + "=1", kKey256 + "=1"},
        StateCase{"key 256 chars with at", kAtKey256 + "=1", kAtKey256 + "=1"},
        StateCase{"at then 15 chars", "t@" + std::string(15, 'v') + "=1",
                  "t@" + std::string(15, 'v') + "=1"},
        // A member breaking the grammar is dropped, the rest of the header is kept.
        StateCase{"key starts with at", "@foo=1,bar=2", "bar=2"},
        StateCase{"key is only at", "@=1,bar=2", "bar=2"},
        StateCase{"key starts with underscore", "_foo=1,bar=2", "bar=2"},
        StateCase{"key upper case", "FOO=1,bar=2", "bar=2"},
        StateCase{"key with dot", "foo.bar=1,bar=2", "bar=2"},
        StateCase{"space before equals", "foo =1,bar=2", "bar=2"},
        StateCase{"empty key", "=1,bar=2", "bar=2"}, StateCase{"no equals", "foo,bar=2", "bar=2"},
        StateCase{"bad member last", "bar=2,BAD=1", "bar=2"},
        StateCase{"every member bad", "A=1,B=2", ""},
        // §3.3.2.2.2 Value: value = 0*255(chr) nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E.
        StateCase{"value all printable", "foo=!\"#$%&'()*+-./09:;<>?@AZ[\\]^_`az{|}~",
                  "foo=!\"#$%&'()*+-./09:;<>?@AZ[\\]^_`az{|}~"},
        StateCase{"value 256 chars", "foo=" + kValue256, "foo=" + kValue256},
        StateCase{"empty value", "foo=,bar=3", "bar=3"},
        StateCase{"value only space", "foo= ,bar=3", "bar=3"},  // trailing OWS is not value
        StateCase{"value with equals", "foo=bar=baz,bar=3", "bar=3"},
        StateCase{"value with tab", "foo=a\tb,bar=3", "bar=3"},
        StateCase{"value with DEL", "foo=a\x7f,bar=3", "bar=3"},
        StateCase{"value with non ascii", "foo=\xc3\xa9,bar=3", "bar=3"},
        StateCase{"value with control", std::string("foo=a\x01,bar=3"), "bar=3"},
        // §3.3.3 "Only one entry per key is allowed" and §3.5 "vendors MAY also discard duplicate
        // keys": the header is kept, the later duplicate is dropped.
        StateCase{"same key twice", "foo=1,foo=1", "foo=1"},
        StateCase{"same key other value", "foo=1,bar=2,foo=3", "foo=1,bar=2"},
        StateCase{"duplicate at key", "t@s=1,t@s=2", "t@s=1"},
        StateCase{"invalid first then valid", "foo=,foo=2", "foo=2"},
        // §3.3.2.1 list = list-member 0*31( OWS "," OWS list-member ): at most 32 members.
        StateCase{"32 members", members(32), members(32)},
        StateCase{"32 members and empties", members(32) + ",,, ,", members(32)},
        StateCase{"33 members", members(33), "DISCARDED"},
        StateCase{"33 members one invalid", members(32) + ",BAD=1", "DISCARDED"},
        StateCase{"33 members one duplicate", members(32) + ",k0=v", "DISCARDED"},
        // A member over the size limits of §3.3.2.2.1 / §3.3.2.2.2 discards the whole header.
        StateCase{"key 257 chars", "foo=1," + kKey256 + "b=1", "DISCARDED"},
        StateCase{"key 257 chars with at", "foo=1,t" + kAtKey256 + "=1", "DISCARDED"},
        StateCase{"key 257 bad chars", "foo=1," + std::string(257, 'Z') + "=1", "DISCARDED"},
        StateCase{"no equals 257 chars", "foo=1," + std::string(257, 'z'), "DISCARDED"},
        StateCase{"value 257 chars", "foo=1,bar=" + kValue256 + "v", "DISCARDED"}),
    [](const ::testing::TestParamInfo<StateCase>& info) {
      std::string n = info.param.name;
      for (auto& c : n) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

// §3.3.2.2.1 as a predicate, used by TraceState::set too.
TEST(TraceState, KeyGrammarOfLevel2) {
  EXPECT_TRUE(is_valid_tracestate_key("a"));
  EXPECT_TRUE(is_valid_tracestate_key("9"));
  EXPECT_TRUE(is_valid_tracestate_key("vendor@"));
  EXPECT_TRUE(is_valid_tracestate_key(kAtKey256));
  EXPECT_FALSE(is_valid_tracestate_key(""));
  EXPECT_FALSE(is_valid_tracestate_key("@vendor"));
  EXPECT_FALSE(is_valid_tracestate_key("-a"));
  EXPECT_FALSE(is_valid_tracestate_key("a=b"));
  EXPECT_FALSE(is_valid_tracestate_key(kKey256 + "b"));
}

// §3.3.2.2.2: "All trailing spaces are considered to be optional whitespace characters not part
// of the value."
TEST(TraceState, TrailingSpaceIsOwsNotValue) {
  // "foo= " trims to "foo=" whose value is empty: the member is dropped.
  EXPECT_EQ(outcome("foo= "), "");
  EXPECT_EQ(outcome("foo=1 "), "foo=1");
  EXPECT_FALSE(is_valid_tracestate_value("a "));
  EXPECT_TRUE(is_valid_tracestate_value(" a"));
}

// §3.3.2: "When receiving multiple tracestate header fields, they MUST be combined into a single
// header"; the caller joins them with ',' and the rules apply to the joined list.
TEST(TraceState, JoinedFieldsFollowTheSameRules) {
  EXPECT_EQ(outcome(std::string("foo=1") + "," + "foo=2"), "foo=1");
  EXPECT_EQ(outcome(std::string("foo=1") + "," + kKey256 + "b=1"), "DISCARDED");
  EXPECT_EQ(outcome(std::string("foo=1") + "," + kKey256 + "=1"), "foo=1," + kKey256 + "=1");
}

// §3.3.3.1 tracestate Limits: "Vendors SHOULD propagate at least 512 characters"; truncation
// removes whole entries.
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

// §3.3.3.1: "Entries larger than 128 characters long SHOULD be removed first. Then entries
// SHOULD be removed starting from the end of tracestate."
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

// §3.5 Mutating the tracestate Field: a modified key moves to the left; §3.3.2: "If adding an
// entry would cause the tracestate list to contain more than 32 list-members the right-most
// list-member should be removed".
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
  EXPECT_FALSE(ts->set("@bad", "x"));
  EXPECT_TRUE(ts->set("tenant@vendor@x", "y"));
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
