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

// The lists are a trivially destructible thread_local, constant-initialised: each access is a
// plain thread-pointer-relative load, with no call to a TLS wrapper that checks for a pending
// constructor (≈ 15 instructions per allocation and per free, 13 of each per request on
// bench/load/direct.yaml, callgrind). A second thread_local with a destructor frees the kept
// blocks at thread exit; it is touched once per thread, when the first block is kept.
struct FreeLists {
  std::array<FreeBlock*, kClasses> head;
  std::array<std::uint32_t, kClasses> count;
  bool reaper_armed;
  bool dead;  // the thread's destructors ran: later frees go to operator delete
};

constinit thread_local FreeLists lists{};

struct Reaper {
  bool armed = false;
  ~Reaper() {
    lists.dead = true;
    for (FreeBlock*& h : lists.head) {
      while (h != nullptr) {
        FreeBlock* next = h->next;
        ::operator delete(h);
        h = next;
      }
    }
  }
};

thread_local Reaper reaper;

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
  if (c >= kClasses || lists.count[c] >= kMaxKept || lists.dead) return ::operator delete(p);
  if (!lists.reaper_armed) {
    lists.reaper_armed = true;
    reaper.armed = true;  // constructs it: its destructor runs at thread exit
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = lists.head[c];
  lists.head[c] = b;
  ++lists.count[c];
}

}  // namespace sluice::detail
