// QueueBudget: the access log's queue bounds (queue_lines, queue_bytes) for all workers together,
// handed to each worker's queue shard in reservations, so that a worker writes the shared count
// once per reservation (up to 1024 lines or 256 KiB), not once per line.
//
//   QueueBudget budget(65536, 64 << 20, shard_count());
//   QueueBudget::Credit credit;                 // a shard's unused reservation
//   if (!budget.refill(credit, line_bytes)) drop();
//   budget.give_back(lines_written, bytes_written);   // the writer thread, after a drain
//
// The lines and bytes queued in all shards plus every shard's unused credit never exceed the
// bounds. A reservation is at most a quarter of the bounds shared out over the shards, so with
// several shards busy the queue can look full up to a quarter early; with one shard in use (one
// worker) the bounds are exact, as with one shared queue.
#pragma once

#include <cstddef>
#include <mutex>

namespace sluice::observe {

class QueueBudget {
 public:
  struct Credit {
    std::size_t lines = 0;
    std::size_t bytes = 0;
  };

  QueueBudget(std::size_t max_lines, std::size_t max_bytes, std::size_t shards);

  // Returns `credit` to the budget, then reserves at least one line and `need_bytes` bytes, up to
  // a reservation's size. False (credit left empty) when the bounds leave no room for it.
  bool refill(Credit& credit, std::size_t need_bytes);
  // What a drain took out of the queue, or a shard's unused credit.
  void give_back(std::size_t lines, std::size_t bytes);

 private:
  const std::size_t chunk_lines_;
  const std::size_t chunk_bytes_;
  std::mutex mu_;
  std::size_t lines_;  // guarded by mu_: not queued and not reserved
  std::size_t bytes_;  // guarded by mu_
};

}  // namespace sluice::observe
