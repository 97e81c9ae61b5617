// Seeded, counter-based random draws: the n-th draw of a stream is splitmix64(seed, n), a pure
// function of (seed, n). Any thread may take the next index from one atomic counter, so a
// whole experiment repeats exactly from its seed whatever the worker count.
//
//   SeededStream s(stream_seed(42, "slow-api"));
//   std::uint64_t n = s.next_index();          // one atomic increment per draw
//   if (unit_draw(s.seed(), n) * 100 < pct) inject();
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace sluice {

// SplitMix64's output function (Steele, Lea, Flood 2014): the n-th output of a SplitMix64
// generator seeded with `seed` is splitmix64(seed, n) with n counting from 0.
constexpr std::uint64_t splitmix64(std::uint64_t seed, std::uint64_t n) {
  std::uint64_t z = seed + (n + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A uniform double in [0, 1) from the top 53 bits of the n-th output.
constexpr double unit_draw(std::uint64_t seed, std::uint64_t n) {
  return static_cast<double>(splitmix64(seed, n) >> 11) * 0x1.0p-53;
}

// The seed of one named stream: different faults under one experiment seed draw independently.
constexpr std::uint64_t stream_seed(std::uint64_t seed, std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the name
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return splitmix64(seed ^ h, 0);
}

// A stream: a seed and the index of the next draw.
class SeededStream {
 public:
  explicit SeededStream(std::uint64_t seed = 0) : seed_(seed) {}
  std::uint64_t seed() const { return seed_.load(std::memory_order_relaxed); }
  // Reseeds and restarts at index 0 (config load; not concurrent with draws of a test).
  void reseed(std::uint64_t seed) {
    seed_.store(seed, std::memory_order_relaxed);
    next_.store(0, std::memory_order_relaxed);
  }
  std::uint64_t next_index() { return next_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t draws() const { return next_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> seed_;
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace sluice
