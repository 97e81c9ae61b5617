// SegmentLog — an append-only log of records on local disk, split into segment files, for the
// store-and-forward queue (see store_and_forward.hpp). Each record carries a CRC-32; a record
// is "done" once a done-mark for its id is appended; a segment file is deleted once it and every
// older segment hold no pending record. open() replays the files: records without a done-mark
// come back, a torn or corrupt record ends the reading of its segment with a warning (appends
// always go to a fresh segment, so a torn tail is never written after).
//
//   SegmentLog log({.dir = "/var/lib/sluice/q", .fsync = FsyncPolicy::kAlways});
//   std::vector<LogRecord> pending; std::vector<std::string> warnings;
//   if (auto err = log.open(pending, warnings); !err.empty()) fail(err);
//   auto id = log.append(payload);            // 0 and log.last_error() when it failed
//   log.mark_done(*id);
//
// On disk, each segment is `seg-<first id, 20 digits>.log`, a sequence of frames:
//   u32 magic "SQR1" | u8 type (1 record, 2 done-mark, 3 attempts) | u64 id | u32 payload length |
//   u32 CRC-32 of (type, id, length, payload) | payload
// An attempts frame's payload is a u32, the record's counted attempts so far (the last one wins).
// Numbers are little-endian. Not thread-safe: the caller serializes.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace sluice::queue {

enum class FsyncPolicy {
  kAlways,    // fdatasync after every append and done-mark: survives a power loss
  kInterval,  // sync() every interval (the caller's timer): a power loss loses that much
  kNever,     // the OS decides: survives a crash of sluice (kill -9), not a power loss
};

struct LogOptions {
  std::string dir;
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  std::uint64_t segment_bytes = 64 << 20;  // a segment is closed once it is this large
  std::uint64_t max_bytes = 1ull << 30;    // appends beyond this many bytes on disk fail (full)
};

struct LogRecord {
  std::uint64_t id = 0;
  std::string payload;
  int attempts = 0;  // from its last attempts frame
};

class SegmentLog {
 public:
  explicit SegmentLog(LogOptions options) : options_(std::move(options)) {}
  ~SegmentLog();
  SegmentLog(const SegmentLog&) = delete;
  SegmentLog& operator=(const SegmentLog&) = delete;

  // Creates the directory if needed, reads every segment, returns the pending records in id
  // order, and opens a fresh segment for appends. Empty string: success; else the error.
  std::string open(std::vector<LogRecord>& pending, std::vector<std::string>& warnings);

  enum class AppendError { kNone, kFull, kIo };
  // Appends a record; its id (> 0), or 0 with last_error() set. A failed write is cut back
  // (ftruncate), so the log holds no torn record from it.
  std::uint64_t append(std::string_view payload);
  AppendError last_error() const { return last_error_; }
  const std::string& last_error_text() const { return last_error_text_; }

  // Marks a pending record done (persisted per the fsync policy) and deletes segments that hold
  // nothing pending any more. False when the mark could not be written (it stays pending).
  bool mark_done(std::uint64_t id);
  // Records a pending record's counted attempts (persisted per the fsync policy); false when the
  // frame could not be written (the count after a restart is then lower, never higher).
  bool mark_attempts(std::uint64_t id, int attempts);
  // Flushes appended bytes to the disk (FsyncPolicy::kInterval's timer calls it).
  void sync();
  // For a sync outside the caller's lock: a duplicate of the written segment's descriptor when
  // something was written since the last sync (the caller fdatasyncs and closes it), else -1.
  int take_sync_fd();

  std::uint64_t bytes_on_disk() const { return bytes_on_disk_; }
  std::size_t pending() const { return pending_total_; }
  std::size_t segments() const { return segments_.size(); }
  const LogOptions& options() const { return options_; }

 private:
  struct Segment {
    std::string path;
    std::uint64_t first_id = 0;
    std::uint64_t last_id = 0;  // of a record in it (0: none yet)
    std::uint64_t bytes = 0;
    std::size_t pending = 0;
  };
  bool write_frame(std::uint8_t type, std::uint64_t id, std::string_view payload);
  bool start_segment(std::uint64_t first_id);
  void rotate();  // closes the written segment, starts the next
  Segment* segment_of(std::uint64_t id);
  void remove_done_segments();

  LogOptions options_;
  std::deque<Segment> segments_;  // oldest first; the last one is written
  int fd_ = -1;                   // of segments_.back()
  std::uint64_t next_id_ = 1;
  std::uint64_t bytes_on_disk_ = 0;
  std::size_t pending_total_ = 0;
  std::unordered_set<std::uint64_t> pending_ids_;
  bool dirty_ = false;  // written since the last sync
  AppendError last_error_ = AppendError::kNone;
  std::string last_error_text_;
};

// CRC-32 (IEEE 802.3, as zlib's crc32), continuing from `crc`.
std::uint32_t crc32(std::uint32_t crc, std::string_view bytes);

}  // namespace sluice::queue
