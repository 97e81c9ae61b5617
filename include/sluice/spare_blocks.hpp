// sluice::SpareBlocks<Size> — a few freed memory blocks of one size kept per thread, so that an
// object made and freed for every request (the proxy's UpstreamCall, RecyclingAllocator)
// takes a block back instead of calling malloc and free (≈ 170 instructions a pair for small
// blocks, ≈ 400 for blocks past glibc's per-thread cache, 1 KiB; callgrind).
//
//   void* block = SpareBlocks<sizeof(Call)>::take();   // a kept block, or ::operator new(Size)
//   ...
//   SpareBlocks<sizeof(Call)>::give(block);             // kept for the next take() here, or freed
//
// Per thread, so no lock: a block given on another thread than it was taken on joins that
// thread's spares. At most kKept blocks per size and thread; they are freed when the thread
// ends. Blocks have operator new's default alignment (16 bytes on x86-64).
#pragma once

#include <array>
#include <cstddef>
#include <new>

namespace sluice {

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
  // False once this thread's kept_ was destroyed: a block given later in the thread's exit
  // (a context destroyed by another thread-local) goes back to the heap.
  static inline constinit thread_local bool alive_ = true;
};

}  // namespace sluice
