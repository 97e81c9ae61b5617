// InstanceState<T> — per-request state of one middleware instance, kept in the request Context.
// The Context keys slots by type; two instances of the same middleware in a chain need their
// own state, so the slot holds a small list keyed by the instance's address.
//
//   auto& s = InstanceState<BreakerCall>::emplace(ex.context(), this);   // in pre_handle
//   if (auto* s = InstanceState<BreakerCall>::find(ex.context(), this)) use(*s);  // post_handle
#pragma once

#include <boost/container/small_vector.hpp>
#include <utility>

#include "sluice/context.hpp"

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
  // The Context destroys it after every request and keeps its block (TypedSlots): the route's
  // next request on the connection builds its List there, without an allocation.
  struct List final {
    // Inline room for two instances: no allocation beyond the slot itself in the usual case.
    boost::container::small_vector<std::pair<const void*, T>, 2> items;
  };
};

}  // namespace sluice::middleware
