#include "observe/tracing/sampler.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

namespace sluice::observe {
namespace {

TraceId id_with_low(uint64_t low) {
  TraceId id;
  id.b[0] = 0xff;  // the upper half must not matter
  for (int i = 15; i >= 8; --i) {
    id.b[i] = static_cast<uint8_t>(low);
    low >>= 8;
  }
  return id;
}

TraceParent parent(bool sampled) {
  TraceParent p;
  p.trace_id = random_trace_id();
  p.parent_id = random_span_id();
  p.flags = sampled ? kFlagSampled : 0;
  return p;
}

TEST(Sampler, AlwaysOnAndOff) {
  const TraceId id = random_trace_id();
  EXPECT_TRUE(Sampler::always_on().should_sample(nullptr, id));
  EXPECT_FALSE(Sampler::always_off().should_sample(nullptr, id));
  // Not parent-based: the parent's flag is ignored.
  const TraceParent p = parent(false);
  EXPECT_TRUE(Sampler::always_on().should_sample(&p, id));
}

TEST(Sampler, RatioUsesTheRightmostEightBytes) {
  const Sampler half = Sampler::trace_id_ratio(0.5);
  // (low >> 1) < 0.5 * 2^63  <=>  low < 2^63.
  EXPECT_TRUE(half.sample_root(id_with_low(0)));
  EXPECT_TRUE(half.sample_root(id_with_low((uint64_t{1} << 63) - 1)));
  EXPECT_FALSE(half.sample_root(id_with_low(uint64_t{1} << 63)));
  EXPECT_FALSE(half.sample_root(id_with_low(~uint64_t{0})));
  EXPECT_TRUE(Sampler::trace_id_ratio(1.0).sample_root(id_with_low(~uint64_t{0})));
  EXPECT_FALSE(Sampler::trace_id_ratio(0.0).sample_root(id_with_low(0)));
}

TEST(Sampler, RatioIsMonotonicAndRoughlyRight) {
  const Sampler low = Sampler::trace_id_ratio(0.1);
  const Sampler high = Sampler::trace_id_ratio(0.3);
  int n_low = 0;
  int n_high = 0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    const TraceId id = random_trace_id();
    const bool l = low.sample_root(id);
    const bool h = high.sample_root(id);
    ASSERT_TRUE(!l || h) << "sampled at 0.1 must be sampled at 0.3";
    n_low += l;
    n_high += h;
  }
  EXPECT_NEAR(n_low / double(kN), 0.1, 0.01);
  EXPECT_NEAR(n_high / double(kN), 0.3, 0.01);
}

TEST(Sampler, RatioIsClamped) {
  EXPECT_EQ(Sampler::trace_id_ratio(-1).ratio(), 0.0);
  EXPECT_EQ(Sampler::trace_id_ratio(7).ratio(), 1.0);
  EXPECT_EQ(Sampler::trace_id_ratio(std::nan("")).ratio(), 0.0);
}

TEST(Sampler, ParentBasedFollowsTheParent) {
  const Sampler s = Sampler::parent_based(Sampler::trace_id_ratio(0.0));
  const TraceParent yes = parent(true);
  const TraceParent no = parent(false);
  EXPECT_TRUE(s.should_sample(&yes, yes.trace_id));
  EXPECT_FALSE(s.should_sample(&no, no.trace_id));
  EXPECT_FALSE(s.should_sample(nullptr, random_trace_id()));  // root: ratio 0
  const Sampler on = Sampler::parent_based(Sampler::always_on());
  EXPECT_FALSE(on.should_sample(&no, no.trace_id));
  EXPECT_TRUE(on.should_sample(nullptr, random_trace_id()));
}

TEST(Sampler, ParsesOtelNames) {
  auto s = parse_sampler("always_on", "");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind(), Sampler::Kind::kAlwaysOn);
  EXPECT_FALSE(s->is_parent_based());
  s = parse_sampler("always_off", "");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind(), Sampler::Kind::kAlwaysOff);
  s = parse_sampler("traceidratio", "0.25");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind(), Sampler::Kind::kTraceIdRatio);
  EXPECT_EQ(s->ratio(), 0.25);
  EXPECT_FALSE(s->is_parent_based());
  s = parse_sampler("parentbased_always_on", "");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->is_parent_based());
  EXPECT_EQ(s->kind(), Sampler::Kind::kAlwaysOn);
  s = parse_sampler("parentbased_always_off", "");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind(), Sampler::Kind::kAlwaysOff);
  s = parse_sampler("ParentBased_TraceIdRatio", " 0.5 ");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->is_parent_based());
  EXPECT_EQ(s->ratio(), 0.5);
  EXPECT_EQ(s->description(), "ParentBased{root:TraceIdRatioBased{0.5}}");
  s = parse_sampler("traceidratio", "");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ratio(), 1.0);  // the OTel default argument
}

TEST(Sampler, RejectsBadValues) {
  std::string error;
  EXPECT_FALSE(parse_sampler("jaeger_remote", "", &error));
  EXPECT_NE(error.find("unknown sampler \"jaeger_remote\""), std::string::npos);
  EXPECT_FALSE(parse_sampler("traceidratio", "1.5", &error));
  EXPECT_NE(error.find("not a ratio"), std::string::npos);
  EXPECT_FALSE(parse_sampler("traceidratio", "abc", &error));
  EXPECT_FALSE(parse_sampler("traceidratio", "0.5x", &error));
  EXPECT_FALSE(parse_sampler("traceidratio", "-0.1", &error));
}

TEST(Sampler, FromEnv) {
  ::setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
  ::setenv("OTEL_TRACES_SAMPLER_ARG", "0.125", 1);
  Sampler s = sampler_from_env(Sampler::always_off());
  EXPECT_TRUE(s.is_parent_based());
  EXPECT_EQ(s.ratio(), 0.125);

  std::string error;
  ::setenv("OTEL_TRACES_SAMPLER_ARG", "lots", 1);
  s = sampler_from_env(Sampler::always_off(), &error);
  EXPECT_EQ(s.ratio(), 1.0);
  EXPECT_FALSE(error.empty());

  ::setenv("OTEL_TRACES_SAMPLER", "nope", 1);
  s = sampler_from_env(Sampler::always_off(), &error);
  EXPECT_EQ(s.kind(), Sampler::Kind::kAlwaysOff);

  ::unsetenv("OTEL_TRACES_SAMPLER");
  ::unsetenv("OTEL_TRACES_SAMPLER_ARG");
  s = sampler_from_env(Sampler::always_on());
  EXPECT_EQ(s.kind(), Sampler::Kind::kAlwaysOn);
}

}  // namespace
}  // namespace sluice::observe
