#include "sluice/snapshot_cell.hpp"

namespace sluice::detail {

int snapshot_thread_index() {
  static std::atomic<int> next{0};
  thread_local const int index = next.fetch_add(1, std::memory_order_relaxed);
  return index;
}

}  // namespace sluice::detail
