// RecyclingAllocator<T>: an allocator for std::allocate_shared whose single-object blocks come
// from the thread's spares (sluice/spare_blocks.hpp), for objects made and freed per request.
// The proxy's UpstreamCall is one: with its shared_ptr control block it is past glibc's
// per-thread cache, and its malloc and free cost ≈ 400 instructions a request (callgrind,
// bench/load/proxy_full.yaml).
//
//   auto call = std::allocate_shared<UpstreamCall>(RecyclingAllocator<UpstreamCall>(), ...);
#pragma once

#include <cstddef>
#include <memory>

#include "sluice/spare_blocks.hpp"

namespace sluice::detail {

template <class T>
struct RecyclingAllocator {
  using value_type = T;
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);

  RecyclingAllocator() = default;
  template <class U>
  RecyclingAllocator(const RecyclingAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n == 1) return static_cast<T*>(SpareBlocks<sizeof(T)>::take());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n == 1) return SpareBlocks<sizeof(T)>::give(p);
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const RecyclingAllocator<U>&) const noexcept {
    return true;  // stateless: any instance frees what another allocated
  }
};

}  // namespace sluice::detail
