// sluice::SpareBlocks<Size> — freed memory blocks of one size kept per thread, so that an
// object made and freed for every request (the proxy's UpstreamCall, RecyclingAllocator)
// takes a block back instead of calling malloc and free (≈ 170 instructions a pair for small
// blocks, ≈ 400 for blocks past glibc's per-thread cache, 1 KiB; callgrind).
//
//   void* block = SpareBlocks<sizeof(Call)>::take();   // a kept block, or ::operator new(Size)
//   ...
//   SpareBlocks<sizeof(Call)>::give(block);             // kept for the next take() here, or freed
//
// Per thread, so no lock: a block given on another thread than it was taken on joins that
// thread's spares. Up to kKept blocks per size and thread: as many as a worker has requests in
// flight under load (wrk's 64 connections; with 8 kept, 56 of 64 calls went to malloc,
// docs/PERFORMANCE.md "cache22"). Keeping them costs no more memory than malloc would: blocks
// this small go back to its arena's free lists, not to the system. They are freed when the
// thread ends. The kept blocks form a list through their first bytes (no array to size), last
// given first taken: the block reused is the one most likely still in the cache. Blocks have
// operator new's default alignment (16 bytes on x86-64).
#pragma once

#include <cstddef>
#include <new>

namespace sluice {

template <std::size_t Size>
class SpareBlocks {
  // A kept block holds the link to the next one: a smaller size gets a pointer's room.
  static constexpr std::size_t kBytes = Size < sizeof(void*) ? sizeof(void*) : Size;

 public:
  static constexpr std::size_t kKept = 128;

  static void* take() {
    if (alive_) {
      Kept& k = kept_;
      if (k.top != nullptr) {
        Link* block = k.top;
        k.top = block->next;
        --k.count;
        return block;
      }
    }
    return ::operator new(kBytes);
  }
  static void give(void* block) {
    if (alive_) {
      Kept& k = kept_;
      if (k.count < kKept) {
        k.top = ::new (block) Link{k.top};
        ++k.count;
        return;
      }
    }
    ::operator delete(block);
  }
  // How many blocks this thread keeps now (for tests).
  static std::size_t kept_here() { return alive_ ? kept_.count : 0; }

 private:
  struct Link {
    Link* next;
  };
  struct Kept {
    Link* top = nullptr;
    std::size_t count = 0;
    ~Kept() {
      alive_ = false;
      while (top != nullptr) {
        Link* block = top;
        top = block->next;
        ::operator delete(block);
      }
      count = 0;
    }
  };
  static inline thread_local Kept kept_;
  // False once this thread's kept_ was destroyed: a block given later in the thread's exit
  // (a context destroyed by another thread-local) goes back to the heap.
  static inline constinit thread_local bool alive_ = true;
};

}  // namespace sluice
