// FieldAllocator: per-thread free lists for the messages' header fields (core/field_allocator.hpp).
#include "core/field_allocator.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>

#include "core/http_message.hpp"

namespace sluice::detail {
namespace {

TEST(FieldAllocator, ReusesAFreedBlockOfTheSameClass) {
  void* a = field_allocate(100);
  std::memset(a, 'x', 100);
  field_deallocate(a, 100);
  void* b = field_allocate(120);  // 65..128 bytes: the same 128-byte class
  EXPECT_EQ(a, b);
  std::memset(b, 'y', 120);
  void* c = field_allocate(120);  // the list is empty again: a new block
  EXPECT_NE(b, c);
  field_deallocate(b, 120);
  field_deallocate(c, 128);
}

TEST(FieldAllocator, LargeBlocksAreNotPooled) {
  void* a = field_allocate(4096);
  std::memset(a, 'x', 4096);
  field_deallocate(a, 4096);
  void* small = field_allocate(64);
  field_deallocate(small, 64);
}

TEST(FieldAllocator, ABlockFreedOnAnotherThreadJoinsThatThreadsList) {
  void* a = field_allocate(200);
  void* reused = nullptr;
  std::thread([&] {
    field_deallocate(field_allocate(8), 8);  // this thread's lists exist from here on
    field_deallocate(a, 200);
    reused = field_allocate(200);
    field_deallocate(reused, 200);
  }).join();
  EXPECT_EQ(reused, a);  // freed there, taken there; that thread's exit deleted it
}

// Messages built on one thread, copied, moved and destroyed on another (as a pipelined request
// or an upstream answer may be): every field keeps its bytes.
TEST(FieldAllocator, MessagesKeepTheirFieldsAcrossThreads) {
  RequestMessage m;
  m.method(boost::beast::http::verb::get);
  m.target("/a/" + std::string(300, 't'));
  for (int i = 0; i < 50; ++i)
    m.insert("X-Field-" + std::to_string(i), std::string(static_cast<std::size_t>(i * 20), 'v'));
  RequestMessage copy = m;
  std::thread([moved = std::move(m)]() mutable {
    EXPECT_EQ(moved["X-Field-49"], std::string(980, 'v'));
    moved.erase("X-Field-10");
    moved.set("X-Field-11", "short");
  }).join();
  EXPECT_EQ(copy.target(), "/a/" + std::string(300, 't'));
  EXPECT_EQ(copy["X-Field-10"], std::string(200, 'v'));
  EXPECT_EQ(std::distance(copy.begin(), copy.end()), 50);
}

}  // namespace
}  // namespace sluice::detail
