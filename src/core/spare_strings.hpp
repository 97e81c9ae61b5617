// SpareStrings: a few std::string buffers kept per thread, so that an object made for each
// request (an upstream call) can start with buffers that already have their capacity, and hand
// them back when it dies, instead of an allocation and a free per buffer per request (≈ 170
// instructions each pair, callgrind, bench/load/proxy_full.yaml).
//
//   std::string head = SpareStrings::take(1024);   // empty, capacity >= 1024
//   ...
//   SpareStrings::give(std::move(head));           // kept for the next take() on this thread
//
// Per thread, so no lock: a string given on another thread than it was taken on simply joins
// that thread's spares. At most kKept strings are kept: two per upstream call, for as many calls
// as a worker has in flight under load (sluice/spare_blocks.hpp; with 16 kept, 64 connections
// allocated again). None larger than kMaxBytes is kept: a buffer that grew for one request with
// huge headers is freed, so what a thread keeps stays under kKept x kMaxBytes (2 MiB), however
// large the heads of a burst were (a proxied head is well under 1 KiB).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace sluice::detail {

class SpareStrings {
 public:
  static constexpr std::size_t kKept = 256;
  static constexpr std::size_t kMaxBytes = 8 * 1024;

  // An empty string with room for at least `capacity` bytes.
  static std::string take(std::size_t capacity) {
    std::vector<std::string>& kept = spares();
    std::string s;
    if (!kept.empty()) {
      s = std::move(kept.back());
      kept.pop_back();
      s.clear();
    }
    s.reserve(capacity);
    return s;
  }

  // Keeps `s`'s buffer for a later take() on this thread, or frees it.
  static void give(std::string&& s) {
    // A string that never left its inline room has no buffer worth keeping.
    if (s.capacity() <= std::string().capacity() || s.capacity() > kMaxBytes) return;
    std::vector<std::string>& kept = spares();
    if (kept.size() == kKept) return;
    kept.push_back(std::move(s));
  }

  // How many strings this thread keeps now (for tests).
  static std::size_t kept_here() { return spares().size(); }

 private:
  static std::vector<std::string>& spares() {
    thread_local std::vector<std::string> kept = [] {
      std::vector<std::string> v;
      v.reserve(kKept);
      return v;
    }();
    return kept;
  }
};

}  // namespace sluice::detail
