#include "observe/access_log/queue_budget.hpp"

#include <algorithm>

namespace sluice::observe {

namespace {

constexpr std::size_t kMaxChunkLines = 1024;
constexpr std::size_t kMaxChunkBytes = 256u << 10;

// A quarter of the bound shared out over the shards: what other shards may hold unused is at
// most a quarter of the bound.
std::size_t chunk_of(std::size_t bound, std::size_t shards, std::size_t cap) {
  return std::clamp<std::size_t>(bound / (4 * std::max<std::size_t>(1, shards)), 1, cap);
}

}  // namespace

QueueBudget::QueueBudget(std::size_t max_lines, std::size_t max_bytes, std::size_t shards)
    : chunk_lines_(chunk_of(max_lines, shards, kMaxChunkLines)),
      chunk_bytes_(chunk_of(max_bytes, shards, kMaxChunkBytes)),
      lines_(max_lines),
      bytes_(max_bytes) {}

bool QueueBudget::refill(Credit& credit, std::size_t need_bytes) {
  std::lock_guard lock(mu_);
  lines_ += credit.lines;
  bytes_ += credit.bytes;
  credit = {};
  if (lines_ == 0 || bytes_ < need_bytes) return false;
  credit.lines = std::min(chunk_lines_, lines_);
  credit.bytes = std::min(std::max(chunk_bytes_, need_bytes), bytes_);
  lines_ -= credit.lines;
  bytes_ -= credit.bytes;
  return true;
}

void QueueBudget::give_back(std::size_t lines, std::size_t bytes) {
  if (lines == 0 && bytes == 0) return;
  std::lock_guard lock(mu_);
  lines_ += lines;
  bytes_ += bytes;
}

}  // namespace sluice::observe
