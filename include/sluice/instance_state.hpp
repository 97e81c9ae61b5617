// InstanceState<T> — per-request state of one middleware instance, kept in the request Context.
// The Context keys slots by type; two instances of the same middleware in a chain need their
// own state, so the slot holds a small list keyed by the instance's address.
//
//   auto& s = InstanceState<BreakerCall>::emplace(ex.context(), this);   // in pre_handle
//   if (auto* s = InstanceState<BreakerCall>::find(ex.context(), this)) use(*s);  // post_handle
#pragma once

#include <array>
#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <new>
#include <utility>

#include "sluice/context.hpp"

namespace sluice::middleware {

namespace instance_state_detail {
// A few freed blocks of `Size` bytes kept per thread, so that the next request takes one back
// instead of allocating (see InstanceState's List). A block freed on another thread joins that
// thread's spares. `alive_` stops the use of the spares once the thread's own were destroyed
// (a context freed later in the thread's exit then uses the heap).
template <std::size_t Size>
class SpareBlocks {
 public:
  static constexpr std::size_t kKept = 8;

  static void* take() {
    if (alive_) {
      Kept& k = kept_;
      if (k.count > 0) return k.blocks[--k.count];
    }
    return ::operator new(Size);
  }
  static void give(void* block) {
    if (alive_) {
      Kept& k = kept_;
      if (k.count < kKept) {
        k.blocks[k.count++] = block;
        return;
      }
    }
    ::operator delete(block);
  }
  // How many blocks this thread keeps now (for tests).
  static std::size_t kept_here() { return alive_ ? kept_.count : 0; }

 private:
  struct Kept {
    std::array<void*, kKept> blocks{};
    std::size_t count = 0;
    ~Kept() {
      alive_ = false;
      while (count > 0)
        ::operator delete(blocks[--count]);
    }
  };
  static inline thread_local Kept kept_;
  static inline constinit thread_local bool alive_ = true;
};
}  // namespace instance_state_detail

template <class T>
class InstanceState {
 public:
  static T* find(Context& ctx, const void* owner) {
    auto* list = ctx.get<List>();
    if (list == nullptr) return nullptr;
    for (auto& [key, value] : list->items)
      if (key == owner) return &value;
    return nullptr;
  }
  // For tests: how many freed lists' blocks the calling thread keeps for reuse.
  static std::size_t spare_blocks_here() {
    return instance_state_detail::SpareBlocks<sizeof(List)>::kept_here();
  }
  // A fresh T for `owner` (replacing an older one of the same request).
  static T& emplace(Context& ctx, const void* owner) {
    auto* list = ctx.get<List>();
    if (list == nullptr) list = &ctx.emplace<List>();
    for (auto& [key, value] : list->items) {
      if (key == owner) {
        value = T{};
        return value;
      }
    }
    list->items.emplace_back(owner, T{});
    return list->items.back().second;
  }

 private:
  struct List final {
    // Inline room for two instances: no allocation beyond the slot itself in the usual case.
    boost::container::small_vector<std::pair<const void*, T>, 2> items;

    // The Context frees its slots after every request and the route's next request makes the
    // List again: its block comes from the few the thread keeps, not from the heap (an
    // allocation and a free per middleware per request were ≈ 170 instructions, callgrind,
    // bench/load/proxy_full.yaml).
    static void* operator new(std::size_t) {
      return instance_state_detail::SpareBlocks<sizeof(List)>::take();
    }
    static void operator delete(void* block) {
      instance_state_detail::SpareBlocks<sizeof(List)>::give(block);
    }
  };
  static_assert(alignof(List) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
};

}  // namespace sluice::middleware
