#include "observe/access_log/access_log_writer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/own_file_table.hpp"
#include "observe/metrics/sharded.hpp"

namespace sluice::observe {
namespace {

bool is_stdout(const std::string& path) {
  return path.empty() || path == "-";
}

// Writes all of buf; false on error (errno set).
bool write_all(int fd, const char* buf, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    buf += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// One queued entry: its payload size, the formatter (nullptr: the payload is the line itself),
// then the payload. memcpy'd: the buffer gives no alignment.
struct EntryHeader {
  uint32_t size;
  AccessLogWriter::Formatter format;
};

void append_entry(ByteBuffer& queue, AccessLogWriter::Formatter format, std::size_t size) {
  const EntryHeader h{static_cast<uint32_t>(size), format};
  queue.append(reinterpret_cast<const char*>(&h), sizeof h);
}

EntryHeader entry_at(const ByteBuffer& queue, std::size_t at) {
  EntryHeader h;
  std::memcpy(&h, queue.data() + at, sizeof h);
  return h;
}

}  // namespace

AccessLogWriter::AccessLogWriter(Options options, ErrorHandler on_error)
    : options_(std::move(options)),
      on_error_(std::move(on_error)),
      shard_mask_(shard_count() - 1),
      shards_(std::make_unique<Shard[]>(shard_count())),
      budget_(options_.max_queue_lines, options_.max_queue_bytes, shard_count()),
      batches_(shard_count()) {
  thread_ = std::thread([this] { run(); });
  // The file is open (or its error reported) when the constructor returns, as when the calling
  // thread opened it; the writer opens it in its own file table, see run().
  opened_.wait();
}

AccessLogWriter::~AccessLogWriter() {
  shutdown();
}

void AccessLogWriter::report(const std::string& message) {
  if (on_error_) on_error_(message);
}

void AccessLogWriter::open_file() {
  if (is_stdout(options_.path)) {
    fd_ = STDOUT_FILENO;
    return;
  }
  const int fd = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    // Keep the old descriptor (if any): writing to a renamed file beats losing lines.
    report("access log: cannot open " + options_.path + ": " + std::strerror(errno));
    return;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

bool AccessLogWriter::write(std::string_view line) {
  return append(nullptr, line, line.empty() || line.back() != '\n');
}

bool AccessLogWriter::write_record(Formatter format, std::string_view record) {
  return append(format, record, false);
}

// The request thread's whole cost: its own shard's lock, and a read of writer_idle_, which a
// busy writer does not write. No line wakes a busy writer: it drains every kBatchInterval.
bool AccessLogWriter::append(Formatter format, std::string_view payload, bool add_newline) {
  const std::size_t bytes = payload.size() + (add_newline ? 1 : 0);
  Shard& s = shards_[shard_index() & shard_mask_];
  {
    std::lock_guard lock(s.mu);
    const bool admitted = !s.closed && ((s.credit.lines > 0 && s.credit.bytes >= bytes) ||
                                        budget_.refill(s.credit, bytes));
    if (!admitted) {
      s.dropped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    --s.credit.lines;
    s.credit.bytes -= bytes;
    append_entry(s.queue, format, bytes);
    s.queue.append(payload);
    if (add_newline) s.queue += '\n';
    ++s.lines;
    s.bytes += bytes;
  }
  // After the shard's unlock: a writer that went idle stored writer_idle_ before it looked at
  // this shard under the same lock, so either it saw this line or this load sees it idle.
  if (writer_idle_.load(std::memory_order_relaxed)) wake_idle_writer();
  return true;
}

void AccessLogWriter::wake_idle_writer() {
  {
    std::lock_guard lock(mu_);
    if (!writer_idle_.load(std::memory_order_relaxed)) return;  // another thread woke it
    writer_idle_.store(false, std::memory_order_relaxed);
  }
  wake_.notify_one();
}

void AccessLogWriter::reopen() {
  {
    std::lock_guard lock(mu_);
    if (!reopen_requested_) {
      for (std::size_t i = 0; i <= shard_mask_; ++i) {
        Shard& s = shards_[i];
        std::lock_guard shard_lock(s.mu);
        s.reopen_at = s.queue.size();
      }
      reopen_requested_ = true;
    }
  }
  wake_.notify_one();
}

bool AccessLogWriter::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (stopping_) return flushed_.wait_for(lock, timeout, [&] { return stopped_; });
  const uint64_t ticket = ++flush_requested_;
  wake_.notify_one();
  return flushed_.wait_for(lock, timeout, [&] { return flush_done_ >= ticket; });
}

void AccessLogWriter::shutdown() {
  std::call_once(shutdown_once_, [&] {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();  // the thread closed its file
  });
}

uint64_t AccessLogWriter::dropped_total() const {
  uint64_t n = dropped_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i <= shard_mask_; ++i)
    n += shards_[i].dropped.load(std::memory_order_relaxed);
  return n;
}

std::size_t AccessLogWriter::queue_size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i <= shard_mask_; ++i)
    n += queue_size_of_shard(i);
  return n;
}

std::size_t AccessLogWriter::queue_size_of_shard(std::size_t shard) const {
  Shard& s = shards_[shard & shard_mask_];
  std::lock_guard lock(s.mu);
  return s.lines;
}

std::size_t AccessLogWriter::take_batches(bool stopping) {
  std::size_t lines = 0;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    Batch& b = batches_[i];
    std::lock_guard lock(s.mu);
    b.entries.swap(s.queue);  // both keep their capacity: no allocation once warmed up
    b.split = s.reopen_at.value_or(b.entries.size());
    s.reopen_at.reset();
    lines += s.lines;
    bytes += s.bytes;
    s.lines = 0;
    s.bytes = 0;
    s.closed = stopping;  // nothing is queued after the last batch
  }
  budget_.give_back(lines, bytes);  // the batch in flight does not count against the bounds
  return lines;
}

bool AccessLogWriter::any_queued() {
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    if (s.lines > 0) return true;
  }
  return false;
}

void AccessLogWriter::reclaim_credit() {
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    budget_.give_back(s.credit.lines, s.credit.bytes);
    s.credit = {};
  }
}

void AccessLogWriter::write_out(std::size_t lines) {
  if (fd_ >= 0 && write_all(fd_, out_.data(), out_.size())) {
    written_.fetch_add(lines, std::memory_order_relaxed);
  } else {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    dropped_.fetch_add(lines, std::memory_order_relaxed);
    report(fd_ < 0 ? "access log: no open file, lines dropped"
                   : std::string("access log: write failed: ") + std::strerror(errno));
  }
  out_.clear();
}

void AccessLogWriter::write_batches(bool after_reopen) {
  // One write(2) per chunk of about 64 KiB, across the shards' batches: fewer syscalls than a
  // write per line or per shard, and a bounded buffer. The buffer lives as long as the writer,
  // at up to twice the chunk (it doubles past it): 256 KiB chunks kept a 512 KiB buffer for
  // good after the first backlog, a step in the 10-minute soak's RSS (docs/RELIABILITY.md,
  // "Soak"). Every write holds whole lines, so lines are never split or interleaved.
  constexpr std::size_t kChunk = 64 << 10;
  std::size_t lines = 0;
  for (const Batch& b : batches_) {
    std::size_t at = after_reopen ? b.split : 0;
    const std::size_t to = after_reopen ? b.entries.size() : b.split;
    while (at < to) {
      const EntryHeader h = entry_at(b.entries, at);
      const std::string_view payload(b.entries.data() + at + sizeof h, h.size);
      if (h.format == nullptr)
        out_.append(payload);
      else
        h.format(payload, out_);
      at += sizeof h + h.size;
      ++lines;
      if (out_.size() >= kChunk) {
        write_out(lines);
        lines = 0;
      }
    }
  }
  if (lines > 0) write_out(lines);
}

void AccessLogWriter::run() {
  // A table of its own before the file is opened: the worker's table is then used by the worker
  // alone (no file reference per socket call), and the file is never in it, nor is a worker's
  // socket in this one. The file is opened, reopened and closed on this thread only.
  detail::leave_shared_file_table("access log writer");
  ::pthread_setname_np(::pthread_self(), "sluice-alog");
  open_file();
  opened_.count_down();
  int empty_intervals = 0;
  while (true) {
    bool reopen = false;
    uint64_t flush_ticket = 0;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      auto urgent = [&] {
        return stopping_ || reopen_requested_ || flush_requested_ > flush_done_;
      };
      if (writer_idle_.load(std::memory_order_relaxed)) {
        // any_queued() after writer_idle_ was stored: see append().
        wake_.wait(lock, [&] {
          return !writer_idle_.load(std::memory_order_relaxed) || urgent() || any_queued();
        });
        writer_idle_.store(false, std::memory_order_relaxed);
      } else {
        wake_.wait_for(lock, kBatchInterval, urgent);
      }
      reopen = std::exchange(reopen_requested_, false);
      flush_ticket = flush_requested_;
      stopping = stopping_;
      const std::size_t lines = take_batches(stopping);
      if (lines == 0 && !reopen && !stopping && flush_ticket <= flush_done_) {
        // kIdleAfter intervals without a line: sleep until a request thread or a call wakes us.
        if (++empty_intervals >= kIdleAfter) {
          reclaim_credit();
          writer_idle_.store(true, std::memory_order_relaxed);
        }
        continue;
      }
      empty_intervals = 0;
    }
    write_batches(false);
    if (reopen) {
      if (!is_stdout(options_.path)) open_file();
      reopens_.fetch_add(1, std::memory_order_relaxed);
    }
    write_batches(true);
    for (Batch& b : batches_) {
      b.entries.clear();
      if (b.entries.capacity() > kKeepCapacity) b.entries.release();  // after a burst
    }
    {
      std::lock_guard lock(mu_);
      flush_done_ = std::max(flush_done_, flush_ticket);
      stopped_ = stopping;
    }
    flushed_.notify_all();
    if (stopping) break;
  }
  if (fd_ >= 0 && fd_ != STDOUT_FILENO) ::close(fd_);
  fd_ = -1;
}

}  // namespace sluice::observe
