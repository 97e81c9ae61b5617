// InstanceState<T> — per-request state of one middleware instance, kept in the request Context.
// The Context keys slots by type; two instances of the same middleware in a chain need their
// own state, so the slot holds a small list keyed by the instance's address.
//
//   auto& s = InstanceState<BreakerCall>::emplace(ex.context(), this);   // in pre_handle
//   if (auto* s = InstanceState<BreakerCall>::find(ex.context(), this)) use(*s);  // post_handle
#pragma once

#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <utility>

#include "sluice/context.hpp"
#include "sluice/spare_blocks.hpp"

namespace sluice::middleware {

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
  static std::size_t spare_blocks_here() { return SpareBlocks<sizeof(List)>::kept_here(); }
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
    static void* operator new(std::size_t) { return SpareBlocks<sizeof(List)>::take(); }
    static void operator delete(void* block) { SpareBlocks<sizeof(List)>::give(block); }
  };
  static_assert(alignof(List) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
};

}  // namespace sluice::middleware
