// FieldAllocator — the allocator of the HTTP messages' header fields (Beast `basic_fields`):
// per-thread free lists of 64-byte size classes up to 512 bytes, so adding a header field or
// setting a request target takes a block from a list instead of malloc, and tearing a message
// down gives it back (callgrind: malloc + free cost ≈ 150 instructions a field; this ≈ 15).
//
//   using Fields = boost::beast::http::basic_fields<FieldAllocator<char>>;
//
// Stateless: every instance is equal, so messages move and swap freely between threads; a block
// freed on another thread joins that thread's list (each list is bounded; past it, blocks go
// back to operator delete). Larger blocks go straight to operator new/delete.
#pragma once

#include <cstddef>
#include <new>

namespace sluice::detail {

void* field_allocate(std::size_t bytes);
void field_deallocate(void* p, std::size_t bytes) noexcept;

template <class T>
struct FieldAllocator {
  using value_type = T;
  FieldAllocator() noexcept = default;
  template <class U>
  FieldAllocator(const FieldAllocator<U>&) noexcept {}  // NOLINT: rebinding converts implicitly

  T* allocate(std::size_t n) { return static_cast<T*>(field_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { field_deallocate(p, n * sizeof(T)); }

  template <class U>
  bool operator==(const FieldAllocator<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const FieldAllocator<U>&) const noexcept {
    return false;
  }
};

}  // namespace sluice::detail
