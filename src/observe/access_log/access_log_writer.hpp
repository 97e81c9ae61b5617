// AccessLogWriter: an asynchronous line writer for the access log. Request threads hand over
// finished lines — or compact records that the writer thread formats — without blocking; one
// background thread writes them to stdout or a file in batches (one write(2) per batch) and
// reopens the file on request, for logrotate.
//
//   AccessLogWriter log({.path = "/var/log/sluice/access.log"});
//   log.write(json_line);                       // false (and counted) when the queue is full
//   log.write_record(&format_fn, record_bytes); // format_fn(record, out) runs on the writer
//   log.reopen();                      // from the SIGUSR1 handler's thread (not in the handler)
//
// The queue is one shard per worker (observe::shard_index(), as the sharded metrics use): a byte
// buffer of entries (no allocation per line) and its own mutex, on cache lines of its own. A
// request thread locks only its worker's shard, which no other worker touches; the writer thread
// takes each shard's lock once per batch to swap its buffer out, and formats outside the locks.
// The bounds are for all shards together (QueueBudget, reserved a chunk at a time). A thread's
// lines keep their order in the file; lines of two workers are ordered only by batch (2 ms).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "observe/access_log/queue_budget.hpp"
#include "observe/byte_buffer.hpp"

namespace sluice::observe {

class AccessLogWriter {
 public:
  struct Options {
    std::string path;  // empty or "-" = stdout
    std::size_t max_queue_lines = 65536;
    std::size_t max_queue_bytes = 64u << 20;
  };
  // Called from the writer thread on open/write errors (for a warning log); may be empty.
  using ErrorHandler = std::function<void(const std::string& message)>;
  // Turns one queued record into text ending in '\n', appended to `out`; runs on the writer
  // thread. Must be a plain function: it is stored in the queue next to the record.
  using Formatter = void (*)(std::string_view record, ByteBuffer& out);

  explicit AccessLogWriter(Options options, ErrorHandler on_error = {});
  ~AccessLogWriter();  // shutdown()
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Queues one line ('\n' is appended when missing). Never waits for I/O; false (dropped_total
  // + 1) when the queue holds max_queue_lines lines or max_queue_bytes bytes, or after shutdown.
  bool write(std::string_view line);
  // Queues a copy of `record`, to be formatted by `format` on the writer thread. The same bounds
  // as write(), with the record's size counted against max_queue_bytes.
  bool write_record(Formatter format, std::string_view record);

  // Lines queued before this call go to the current file, later ones to a freshly opened `path`
  // (the old one may have been renamed by logrotate). Asynchronous; a no-op for stdout. Not
  // async-signal-safe: call it from the thread that handles SIGUSR1 (e.g. asio::signal_set).
  void reopen();

  // Waits until every line queued before the call has been handed to the kernel.
  bool flush(std::chrono::milliseconds timeout);

  // Writes what is queued, closes the file, stops the thread. Idempotent.
  void shutdown();

  uint64_t written_total() const { return written_.load(std::memory_order_relaxed); }
  // Lines lost: queue full, after shutdown, or in a failed write.
  uint64_t dropped_total() const;
  uint64_t write_errors_total() const { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t reopens_total() const { return reopens_.load(std::memory_order_relaxed); }
  // Lines waiting to be written (locks each shard: for a scrape, not per request).
  std::size_t queue_size() const;
  // The lines waiting in one shard (shard_index() modulo the shard count), for tests.
  std::size_t queue_size_of_shard(std::size_t shard) const;

 private:
  // One worker's part of the queue. Only the threads of its shard and the writer thread lock it.
  struct alignas(64) Shard {
    std::mutex mu;
    ByteBuffer queue;                      // guarded by mu: entries, see access_log_writer.cpp
    std::size_t lines = 0;                 // guarded by mu
    std::size_t bytes = 0;                 // guarded by mu: lines and records, without headers
    QueueBudget::Credit credit;            // guarded by mu: reserved from budget_, unused yet
    std::optional<std::size_t> reopen_at;  // guarded by mu: byte offset in queue
    bool closed = false;                   // guarded by mu: shutdown took its last lines
    std::atomic<uint64_t> dropped{0};      // written under mu, read without it
  };
  // A shard's entries as the writer thread took them; [0, split) go before a reopen.
  struct Batch {
    ByteBuffer entries;
    std::size_t split = 0;
  };

  bool append(Formatter format, std::string_view payload, bool add_newline);
  void wake_idle_writer();
  void run();
  void open_file();
  // Under mu_: moves every shard's entries into batches_, returns how many lines they hold.
  std::size_t take_batches(bool stopping);
  // Under mu_: true when a shard holds a line.
  bool any_queued();
  // Under mu_, as the writer goes idle: the shards' unused reservations back to the budget.
  void reclaim_credit();
  // Formats and writes the part of every batch before (or after) its reopen split.
  void write_batches(bool after_reopen);
  void write_out(std::size_t lines);
  void report(const std::string& message);

  // A busy writer drains every kBatchInterval; only an idle one is woken by a request thread.
  static constexpr std::chrono::milliseconds kBatchInterval{2};
  // The writer goes idle after this many intervals without a line (100 ms): a gateway serving
  // more than about ten requests a second never has a request thread wake it (each wake takes
  // mu_ and a futex call), and an idle gateway's writer still sleeps for good.
  static constexpr int kIdleAfter = 50;
  // A batch buffer larger than this is freed rather than kept for reuse. The queue and the batch
  // swap, so up to twice this stays allocated per shard after a backlog: at 4 MiB the soak's
  // gateway kept about 1 MB more anonymous memory with the access log than without, for good
  // (a 7 % RSS step on 15 MB; docs/RELIABILITY.md, "Soak"). 256 KiB holds a batch interval's
  // lines far above the soak's rate; a larger backlog is freed once written.
  static constexpr std::size_t kKeepCapacity = 256u << 10;

  const Options options_;
  const ErrorHandler on_error_;
  // Opened, written, reopened and closed by the writer thread only: it lives in that thread's own
  // file table (core/own_file_table.hpp): on another thread its number names another file or none.
  int fd_ = -1;
  std::latch opened_{1};  // the writer thread's first open_file() is done

  const std::size_t shard_mask_;
  const std::unique_ptr<Shard[]> shards_;
  QueueBudget budget_;

  // Read by request threads after each line, written under mu_ only when the writer goes idle
  // or is woken: a line of its own, which a busy writer leaves alone.
  alignas(64) std::atomic<bool> writer_idle_{true};

  alignas(64) std::mutex mu_;  // the writer's state below; request threads take it only to wake
  std::condition_variable wake_;
  std::condition_variable flushed_;
  bool reopen_requested_ = false;  // guarded by mu_: every shard has its reopen_at
  bool stopping_ = false;          // guarded by mu_
  bool stopped_ = false;           // guarded by mu_: the last batch is written
  uint64_t flush_requested_ = 0;   // guarded by mu_
  uint64_t flush_done_ = 0;        // guarded by mu_

  // The writer thread's own.
  std::vector<Batch> batches_;  // one per shard
  ByteBuffer out_;              // formatted lines of one write(2)

  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};  // in failed writes; the shards count the refused lines
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> reopens_{0};

  std::once_flag shutdown_once_;
  std::thread thread_;
};

}  // namespace sluice::observe
