#include "core/field_allocator.hpp"

#include <array>
#include <cstdint>

namespace sluice::detail {

namespace {
constexpr std::size_t kClassBytes = 64;
constexpr std::size_t kClasses = 8;      // blocks of 64, 128, ... 512 bytes
constexpr std::uint32_t kMaxKept = 256;  // per class and thread: at most 576 KiB kept in all

struct FreeBlock {
  FreeBlock* next;
};

// False once the thread's lists are destroyed (thread exit): later frees go to operator delete.
// Trivially destructible, so it can still be read then.
thread_local bool lists_alive = false;

struct FreeLists {
  FreeLists() { lists_alive = true; }
  std::array<FreeBlock*, kClasses> head{};
  std::array<std::uint32_t, kClasses> count{};
  ~FreeLists() {
    lists_alive = false;
    for (FreeBlock*& h : head) {
      while (h != nullptr) {
        FreeBlock* next = h->next;
        ::operator delete(h);
        h = next;
      }
    }
  }
};

thread_local FreeLists lists;

// 1..64 -> 0, 65..128 -> 1, ...; kClasses and above: not pooled.
std::size_t size_class(std::size_t bytes) {
  return (bytes - 1) / kClassBytes;
}
}  // namespace

void* field_allocate(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  const std::size_t c = size_class(bytes);
  if (c >= kClasses) return ::operator new(bytes);
  if (FreeBlock* b = lists.head[c]) {
    lists.head[c] = b->next;
    --lists.count[c];
    return b;
  }
  return ::operator new((c + 1) * kClassBytes);
}

void field_deallocate(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes == 0) bytes = 1;
  const std::size_t c = size_class(bytes);
  if (c >= kClasses || !lists_alive || lists.count[c] >= kMaxKept) return ::operator delete(p);
  auto* b = static_cast<FreeBlock*>(p);
  b->next = lists.head[c];
  lists.head[c] = b;
  ++lists.count[c];
}

}  // namespace sluice::detail
