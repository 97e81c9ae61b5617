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
// The queue is one byte buffer of entries (no allocation per line): the request thread appends
// under a short lock, the writer swaps the whole buffer out and formats it outside the lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

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
  uint64_t dropped_total() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t write_errors_total() const { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t reopens_total() const { return reopens_.load(std::memory_order_relaxed); }
  std::size_t queue_size() const { return queued_lines_.load(std::memory_order_relaxed); }

 private:
  void run();
  void open_file();
  // Under mu_: true when one more entry of `bytes` fits, else counts a drop.
  bool admit_locked(std::size_t bytes);
  void after_append_locked(bool& wake);
  // Formats and writes the entries in batch[from, to) (byte offsets), one write(2) per chunk.
  void write_entries(const ByteBuffer& batch, std::size_t from, std::size_t to);
  void report(const std::string& message);

  // A busy writer drains every kBatchInterval, or as soon as kWakeLines lines wait.
  static constexpr std::chrono::milliseconds kBatchInterval{2};
  static constexpr std::size_t kWakeLines = 1024;
  // A swapped-out batch buffer larger than this is freed rather than kept for reuse. The queue
  // and the batch swap, so up to twice this stays allocated after a backlog: at 4 MiB the soak's
  // gateway kept about 1 MB more anonymous memory with the access log than without, for good
  // (a 7 % RSS step on 15 MB; docs/RELIABILITY.md, "Soak"). 256 KiB holds a batch interval's
  // lines far above the soak's rate; a larger backlog is freed once written.
  static constexpr std::size_t kKeepCapacity = 256u << 10;

  const Options options_;
  const ErrorHandler on_error_;
  int fd_ = -1;  // owned by the writer thread after construction

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  ByteBuffer queue_;                      // guarded by mu_: entries, see access_log_writer.cpp
  std::size_t queued_entries_ = 0;        // guarded by mu_
  std::size_t queued_bytes_ = 0;          // guarded by mu_: lines and records, without headers
  std::optional<std::size_t> reopen_at_;  // guarded by mu_: byte offset in queue_
  bool stopping_ = false;                 // guarded by mu_
  bool writer_idle_ = true;               // guarded by mu_: the writer waits for a notify
  uint64_t flush_requested_ = 0;          // guarded by mu_
  uint64_t flush_done_ = 0;               // guarded by mu_

  std::atomic<std::size_t> queued_lines_{0};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> reopens_{0};

  std::once_flag shutdown_once_;
  std::thread thread_;
};

}  // namespace sluice::observe
