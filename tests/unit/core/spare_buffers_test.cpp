// What spares per-request objects an allocation: the per-thread SpareStrings
// (core/spare_strings.hpp, the upstream call's buffers) and SpareBlocks (sluice/spare_blocks.hpp)
// behind RecyclingAllocator (core/recycling_allocator.hpp, the proxy's UpstreamCall); and the
// Context's kept slot blocks behind InstanceState's lists (the rate limiter's and breaker's
// per-request state).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include <memory>

#include "core/recycling_allocator.hpp"
#include "core/spare_strings.hpp"
#include "sluice/context.hpp"
#include "sluice/instance_state.hpp"

namespace sluice {
namespace {

using detail::SpareStrings;

// Each test runs its checks on a fresh thread: the spares are per thread, so other tests on the
// main thread cannot have left any behind.
template <class Fn>
void on_fresh_thread(Fn fn) {
  std::thread t(fn);
  t.join();
}

TEST(SpareStrings, AGivenBufferIsTakenBackEmptyWithItsCapacity) {
  on_fresh_thread([] {
    EXPECT_EQ(SpareStrings::kept_here(), 0u);
    std::string first = SpareStrings::take(1000);
    EXPECT_TRUE(first.empty());
    EXPECT_GE(first.capacity(), 1000u);
    first.assign(700, 'x');
    const char* buffer = first.data();
    SpareStrings::give(std::move(first));
    EXPECT_EQ(SpareStrings::kept_here(), 1u);

    std::string again = SpareStrings::take(100);  // smaller than what is kept: the same buffer
    EXPECT_EQ(SpareStrings::kept_here(), 0u);
    EXPECT_TRUE(again.empty()) << "a taken string holds nothing of its last use";
    EXPECT_EQ(again.data(), buffer);
    EXPECT_GE(again.capacity(), 1000u);

    SpareStrings::give(std::move(again));
    std::string larger = SpareStrings::take(4000);  // a kept buffer grows to what is asked
    EXPECT_TRUE(larger.empty());
    EXPECT_GE(larger.capacity(), 4000u);
  });
}

TEST(SpareStrings, KeepsNeitherInlineNorHugeStringsAndAtMostKKept) {
  on_fresh_thread([] {
    SpareStrings::give(std::string("short"));  // never left its inline room
    EXPECT_EQ(SpareStrings::kept_here(), 0u);
    std::string huge;
    huge.reserve(SpareStrings::kMaxBytes + 1);
    SpareStrings::give(std::move(huge));
    EXPECT_EQ(SpareStrings::kept_here(), 0u) << "a buffer grown for one huge request is freed";

    for (std::size_t i = 0; i < SpareStrings::kKept + 5; ++i) {
      std::string s;
      s.reserve(256);
      SpareStrings::give(std::move(s));
    }
    EXPECT_EQ(SpareStrings::kept_here(), SpareStrings::kKept);
    std::vector<std::string> taken;
    for (std::size_t i = 0; i < SpareStrings::kKept + 2; ++i)
      taken.push_back(SpareStrings::take(64));
    EXPECT_EQ(SpareStrings::kept_here(), 0u);
    for (const auto& s : taken) {
      EXPECT_TRUE(s.empty());
      EXPECT_GE(s.capacity(), 64u);
    }
  });
}

struct CallState {
  int value = 0;
};
using State = middleware::InstanceState<CallState>;

// The Context keeps the List's block after the request (TypedSlots): the next request builds its
// List in the same block, with no state left from the last one. The first two states live inline
// in the List, so their address is the block's.
TEST(InstanceStateBlocks, AClearedContextsListIsReusedByTheNextRequest) {
  int owner_a = 0, owner_b = 0, owner_c = 0;
  Context ctx;
  const CallState* first = nullptr;
  for (int request = 0; request < 5; ++request) {
    auto& a = State::emplace(ctx, &owner_a);
    EXPECT_EQ(a.value, 0) << "request " << request << " starts with a fresh state";
    if (request == 0) first = &a;
    EXPECT_EQ(&a, first) << "request " << request << " has the first request's block";
    a.value = 1 + request;
    State::emplace(ctx, &owner_b).value = 10 + request;
    State::emplace(ctx, &owner_c).value = 100 + request;  // past the list's inline room
    EXPECT_EQ(State::find(ctx, &owner_a)->value, 1 + request);
    EXPECT_EQ(State::find(ctx, &owner_b)->value, 10 + request);
    EXPECT_EQ(State::find(ctx, &owner_c)->value, 100 + request);
    ctx.begin(SteadyTime{}, std::chrono::system_clock::time_point{});  // the next request
    EXPECT_EQ(State::find(ctx, &owner_a), nullptr) << "no state survives the request";
    EXPECT_EQ(State::find(ctx, &owner_c), nullptr);
  }
}

struct Call {
  explicit Call(int v) : value(v) {}
  int value;
  char room[1500] = {};  // past glibc's per-thread cache, as an UpstreamCall is
};

TEST(RecyclingAllocator, ASharedObjectsBlockIsReusedByTheNextOfItsType) {
  on_fresh_thread([] {
    detail::RecyclingAllocator<Call> alloc;
    const void* first_block = nullptr;
    for (int request = 0; request < 4; ++request) {
      auto call = std::allocate_shared<Call>(alloc, request);
      EXPECT_EQ(call->value, request);
      std::weak_ptr<Call> weak = call;
      if (request == 0) {
        first_block = call.get();
      } else {
        EXPECT_EQ(call.get(), first_block) << "request " << request;
      }
      call.reset();
      EXPECT_TRUE(weak.expired());
    }
    // Many alive at once: each its own block; when they go, a few are kept.
    std::vector<std::shared_ptr<Call>> calls;
    for (int i = 0; i < 20; ++i)
      calls.push_back(std::allocate_shared<Call>(alloc, i));
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(calls[static_cast<std::size_t>(i)]->value, i);
    calls.clear();
    std::vector<int, detail::RecyclingAllocator<int>> many(100, 7);  // n > 1: the heap
    EXPECT_EQ(many[99], 7);
  });
}

// A worker under load has many calls in flight at once (wrk's 64 connections: 64 calls). When
// they end, their blocks are all kept, and the next 64 calls take exactly those blocks back: no
// call of the second round goes to malloc. With 8 kept, 56 of the 64 did (docs/PERFORMANCE.md,
// "cache22").
TEST(RecyclingAllocator, AsManyCallsInFlightAsAWorkerHasUnderLoadAllGetTheirBlockBack) {
  on_fresh_thread([] {
    detail::RecyclingAllocator<Call> alloc;
    constexpr int kInFlight = 64;
    std::vector<std::shared_ptr<Call>> calls;
    for (int i = 0; i < kInFlight; ++i)
      calls.push_back(std::allocate_shared<Call>(alloc, i));
    std::vector<const void*> first_round;
    for (const auto& c : calls)
      first_round.push_back(c.get());
    calls.clear();
    for (int i = 0; i < kInFlight; ++i)
      calls.push_back(std::allocate_shared<Call>(alloc, 100 + i));
    std::vector<const void*> second_round;
    for (const auto& c : calls)
      second_round.push_back(c.get());
    std::sort(first_round.begin(), first_round.end());
    std::sort(second_round.begin(), second_round.end());
    EXPECT_EQ(second_round, first_round) << "every call of the second round reuses a kept block";
    for (int i = 0; i < kInFlight; ++i)
      EXPECT_EQ(calls[static_cast<std::size_t>(i)]->value, 100 + i) << "no state of the last use";
  });
}

// The bound: past kKept given blocks, the rest go back to the heap; take() then hands out the
// kept ones, last given first (the one most likely still in the cache), then new ones.
TEST(SpareBlocks, KeepsAtMostKKeptAndHandsTheLastGivenFirst) {
  on_fresh_thread([] {
    using Blocks = SpareBlocks<48>;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < Blocks::kKept + 5; ++i)
      blocks.push_back(::operator new(48));
    for (void* b : blocks)
      Blocks::give(b);
    EXPECT_EQ(Blocks::kept_here(), Blocks::kKept);
    EXPECT_EQ(Blocks::take(), blocks[Blocks::kKept - 1]) << "the last block kept comes first";
    EXPECT_EQ(Blocks::take(), blocks[Blocks::kKept - 2]);
    EXPECT_EQ(Blocks::kept_here(), Blocks::kKept - 2);
    std::vector<void*> rest;
    for (std::size_t i = 0; i < Blocks::kKept; ++i)
      rest.push_back(Blocks::take());  // kKept - 2 kept ones, then 2 from the heap
    EXPECT_EQ(Blocks::kept_here(), 0u);
    EXPECT_EQ(rest[Blocks::kKept - 3], blocks[0]);
    for (void* b : rest)
      ::operator delete(b);
    ::operator delete(blocks[Blocks::kKept - 1]);
    ::operator delete(blocks[Blocks::kKept - 2]);
  });
}

// Two strings per upstream call (its header lines and its head): the 64 calls a loaded worker
// has in flight give 128 strings back, all kept for the next 64 calls.
TEST(SpareStrings, KeepsTheBuffersOfAsManyCallsAsAWorkerHasInFlight) {
  on_fresh_thread([] {
    constexpr std::size_t kStrings = 2 * 64;
    std::vector<std::string> taken;
    for (std::size_t i = 0; i < kStrings; ++i)
      taken.push_back(SpareStrings::take(512));
    std::vector<const char*> buffers;
    for (auto& s : taken) {
      buffers.push_back(s.data());
      SpareStrings::give(std::move(s));
    }
    EXPECT_EQ(SpareStrings::kept_here(), kStrings);
    std::vector<std::string> next_calls;
    for (std::size_t i = 0; i < kStrings; ++i)
      next_calls.push_back(SpareStrings::take(512));
    EXPECT_EQ(SpareStrings::kept_here(), 0u);
    std::vector<const char*> again;
    for (const auto& s : next_calls) {
      EXPECT_TRUE(s.empty());
      again.push_back(s.data());
    }
    std::sort(buffers.begin(), buffers.end());
    std::sort(again.begin(), again.end());
    EXPECT_EQ(again, buffers) << "the next calls' strings are the kept buffers, none new";
  });
}

}  // namespace
}  // namespace sluice
