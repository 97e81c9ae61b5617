// Worker shards: the index of the calling thread's shard in every per-worker structure
// (sharded metrics, the access log queues, the retry budget, the circuit breaker's window, the
// rate limiter's leases). A gateway worker claims its index as it starts and is then that
// shard's only writer; every other thread shares the last shard.
//
//   claim_shard_index(worker);                         // once, on the worker's thread
//   const std::size_t s = shard_index();               // on the request path
//   add_to_shard(slots[s & (shard_count() - 1)], 1, s);  // a plain add when sole_writer(s)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice::detail {

// The calling thread's shard, modulo the shard count. The gateway's worker threads claim
// 0, 1, 2, ... (claim_shard_index, as they start) and are each the only writer of their shard;
// every other thread (admin, log writer, exporter, a library user's own), a worker claiming an
// index another live thread holds, and workers past the last-but-one shard, all write the last
// shard, with atomic adds.
//
// Why sole writers: a lock-prefixed add costs ~20 cycles even on a line no other core touches,
// and a proxied request makes ~20 of them here (docs/PERFORMANCE.md, "single-writer shards").
// With one writer, load + store is exact: no other thread adds to that slot, and a scrape's
// relaxed load of an aligned 64-bit atomic never sees a torn value.
namespace shard_detail {
// The high bit of a shard index: the calling thread is the shard's only writer.
inline constexpr std::size_t kSoleWriter = std::size_t{1} << (sizeof(std::size_t) * 8 - 1);
// Constant-initialised and trivially destructible: read without a TLS wrapper call.
inline constinit thread_local std::size_t thread_shard = SIZE_MAX;
std::size_t assign_shard_index();  // a thread that claimed none: the shared last shard
}  // namespace shard_detail
// The calling thread's shard, maybe with kSoleWriter set: index arrays with `& (count - 1)`.
inline std::size_t shard_index() {
  const std::size_t s = shard_detail::thread_shard;
  return s != SIZE_MAX ? s : shard_detail::assign_shard_index();
}
// Makes the calling thread the only writer of shard `index` when that is free and not the
// last; otherwise it writes the shared last shard. Released when the thread ends.
void claim_shard_index(std::size_t index);
// How many shards every sharded metric has: a power of two, more than the CPU count (every
// worker up to one per CPU gets a shard of its own beside the shared one), at most 16.
std::size_t shard_count();
// True when `shard` (a shard_index()) may be written with plain loads and stores.
inline bool sole_writer(std::size_t shard) {
  return (shard & shard_detail::kSoleWriter) != 0;
}

// Adds n to one shard's slot: see "Why sole writers" above.
template <class T>
inline void add_to_shard(std::atomic<T>& slot, T n, std::size_t shard) {
  if (sole_writer(shard))
    slot.store(static_cast<T>(slot.load(std::memory_order_relaxed) + n), std::memory_order_relaxed);
  else
    slot.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace sluice::detail
