#include "observe/access_log/access_log_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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
    : options_(std::move(options)), on_error_(std::move(on_error)) {
  open_file();
  thread_ = std::thread([this] { run(); });
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

bool AccessLogWriter::admit_locked(std::size_t bytes) {
  if (stopping_ || queued_entries_ >= options_.max_queue_lines ||
      queued_bytes_ + bytes > options_.max_queue_bytes) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

// An idle writer is woken by the first entry; a busy one collects entries for a batch interval
// on its own, so a steady stream of requests costs no futex wake per line.
void AccessLogWriter::after_append_locked(bool& wake) {
  wake = (writer_idle_ && queued_entries_ == 0) || queued_entries_ + 1 == kWakeLines;
  ++queued_entries_;
  queued_lines_.store(queued_entries_, std::memory_order_relaxed);
}

bool AccessLogWriter::write(std::string_view line) {
  const bool add_newline = line.empty() || line.back() != '\n';
  const std::size_t bytes = line.size() + (add_newline ? 1 : 0);
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (!admit_locked(bytes)) return false;
    append_entry(queue_, nullptr, bytes);
    queue_.append(line);
    if (add_newline) queue_ += '\n';
    queued_bytes_ += bytes;
    after_append_locked(wake);
  }
  if (wake) wake_.notify_one();
  return true;
}

bool AccessLogWriter::write_record(Formatter format, std::string_view record) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (!admit_locked(record.size())) return false;
    append_entry(queue_, format, record.size());
    queue_.append(record);
    queued_bytes_ += record.size();
    after_append_locked(wake);
  }
  if (wake) wake_.notify_one();
  return true;
}

void AccessLogWriter::reopen() {
  {
    std::lock_guard lock(mu_);
    if (!reopen_at_) reopen_at_ = queue_.size();
  }
  wake_.notify_one();
}

bool AccessLogWriter::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (stopping_) {
    return flushed_.wait_for(lock, timeout, [&] { return queued_entries_ == 0; });
  }
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
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0 && fd_ != STDOUT_FILENO) ::close(fd_);
    fd_ = -1;
  });
}

void AccessLogWriter::write_entries(const ByteBuffer& batch, std::size_t from, std::size_t to) {
  // One write(2) per chunk of about 64 KiB: fewer syscalls than a write per line, and a
  // bounded buffer. The buffer lives as long as the thread, at up to twice the chunk (it doubles
  // past it): 256 KiB chunks kept a 512 KiB buffer for good after the first backlog, a step in
  // the 10-minute soak's RSS (docs/RELIABILITY.md, "Soak").
  constexpr std::size_t kChunk = 64 << 10;
  thread_local ByteBuffer buf;
  std::size_t at = from;
  while (at < to) {
    buf.clear();
    std::size_t n = 0;
    while (at < to && buf.size() < kChunk) {
      const EntryHeader h = entry_at(batch, at);
      const std::string_view payload(batch.data() + at + sizeof h, h.size);
      if (h.format == nullptr)
        buf.append(payload);
      else
        h.format(payload, buf);
      at += sizeof h + h.size;
      ++n;
    }
    if (fd_ >= 0 && write_all(fd_, buf.data(), buf.size())) {
      written_.fetch_add(n, std::memory_order_relaxed);
    } else {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      dropped_.fetch_add(n, std::memory_order_relaxed);
      report(fd_ < 0 ? "access log: no open file, lines dropped"
                     : std::string("access log: write failed: ") + std::strerror(errno));
    }
  }
}

void AccessLogWriter::run() {
  ByteBuffer batch;
  while (true) {
    std::optional<std::size_t> reopen_at;
    uint64_t flush_ticket = 0;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      auto urgent = [&] {
        return stopping_ || reopen_at_ || flush_requested_ > flush_done_ ||
               queued_entries_ >= kWakeLines;
      };
      auto ready = [&] { return urgent() || queued_entries_ > 0; };
      if (writer_idle_)
        wake_.wait(lock, ready);
      else
        wake_.wait_for(lock, kBatchInterval, urgent);
      if (!ready()) {  // a whole interval without a line: sleep until the next one
        writer_idle_ = true;
        continue;
      }
      writer_idle_ = false;
      batch.swap(queue_);  // both keep their capacity: no allocation once warmed up
      queued_entries_ = 0;
      queued_bytes_ = 0;
      queued_lines_.store(0, std::memory_order_relaxed);
      reopen_at.swap(reopen_at_);
      flush_ticket = flush_requested_;
      stopping = stopping_;
    }
    const std::size_t split = reopen_at ? *reopen_at : batch.size();
    write_entries(batch, 0, split);
    if (reopen_at) {
      if (!is_stdout(options_.path)) open_file();
      reopens_.fetch_add(1, std::memory_order_relaxed);
    }
    write_entries(batch, split, batch.size());
    batch.clear();
    if (batch.capacity() > kKeepCapacity) batch.release();  // after a burst
    {
      std::lock_guard lock(mu_);
      flush_done_ = std::max(flush_done_, flush_ticket);
      if (stopping && queued_entries_ == 0) break;
    }
    flushed_.notify_all();
  }
  flushed_.notify_all();
}

}  // namespace sluice::observe
