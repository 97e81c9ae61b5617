#include "queue/segment_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

namespace sluice::queue {
namespace {

namespace fs = std::filesystem;

constexpr std::uint32_t kMagic = 0x31525153;  // "SQR1" little-endian
constexpr std::uint8_t kRecord = 1;
constexpr std::uint8_t kDone = 2;
constexpr std::uint8_t kAttempts = 3;
constexpr std::size_t kHeader = 4 + 1 + 8 + 4 + 4;
constexpr std::uint32_t kMaxPayload = 256u << 20;  // a larger length is corruption

std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint64_t get_le(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string segment_name(std::uint64_t first_id) {
  std::string digits = std::to_string(first_id);
  return "seg-" + std::string(20 - digits.size(), '0') + digits + ".log";
}

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// The CRC covers type, id, length and payload.
std::uint32_t frame_crc(std::string_view header_fields, std::string_view payload) {
  return crc32(crc32(0, header_fields), payload);
}

}  // namespace

std::uint32_t crc32(std::uint32_t crc, std::string_view bytes) {
  static const auto table = make_table();
  crc = ~crc;
  for (char ch : bytes)
    crc = table[(crc ^ static_cast<unsigned char>(ch)) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

SegmentLog::~SegmentLog() {
  if (fd_ >= 0) {
    if (dirty_ && options_.fsync != FsyncPolicy::kNever) ::fdatasync(fd_);
    ::close(fd_);
  }
}

std::string SegmentLog::open(std::vector<LogRecord>& pending, std::vector<std::string>& warnings) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) return "cannot create " + options_.dir + ": " + ec.message();
  std::vector<std::pair<std::uint64_t, std::string>> files;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != 28 || name.rfind("seg-", 0) != 0 || name.substr(24) != ".log") continue;
    files.emplace_back(std::stoull(name.substr(4, 20)), entry.path().string());
  }
  if (ec) return "cannot read " + options_.dir + ": " + ec.message();
  std::sort(files.begin(), files.end());

  struct Found {
    std::string payload;
    std::size_t segment;
    int attempts = 0;
  };
  std::map<std::uint64_t, Found> records;
  for (const auto& [first_id, path] : files) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return "cannot read " + path;
    if (bytes.empty()) {  // opened for appends and never written: nothing to keep
      fs::remove(path, ec);
      continue;
    }
    Segment seg{path, first_id, 0, bytes.size(), 0};
    const std::size_t index = segments_.size();
    std::size_t at = 0;
    while (at < bytes.size()) {
      const char* p = bytes.data() + at;
      const std::size_t left = bytes.size() - at;
      std::string why;
      if (left < kHeader) {
        why = "a torn frame header";
      } else if (get_le(p, 4) != kMagic) {
        why = "no frame marker";
      } else {
        const auto len = static_cast<std::uint32_t>(get_le(p + 13, 4));
        if (len > kMaxPayload) {
          why = "an impossible length";
        } else if (left < kHeader + len) {
          why = "a torn record (" + std::to_string(left - kHeader) + " of " + std::to_string(len) +
                " payload bytes)";
        } else {
          const std::string_view payload(p + kHeader, len);
          if (frame_crc(std::string_view(p + 4, 13), payload) != get_le(p + 17, 4)) {
            why = "a checksum mismatch";
          } else {
            const auto type = static_cast<std::uint8_t>(p[4]);
            const std::uint64_t id = get_le(p + 5, 8);
            if (type == kRecord) {
              records[id] = Found{std::string(payload), index};
              seg.last_id = std::max(seg.last_id, id);
            } else if (type == kDone) {
              records.erase(id);
            } else if (type == kAttempts && len == 4) {
              if (auto it = records.find(id); it != records.end())
                it->second.attempts = static_cast<int>(get_le(p + kHeader, 4));
            }
            next_id_ = std::max(next_id_, id + 1);
            at += kHeader + len;
            continue;
          }
        }
      }
      warnings.push_back(path + ": " + why + " at byte " + std::to_string(at) + "; the last " +
                         std::to_string(left) + " bytes of this segment are skipped");
      break;
    }
    next_id_ = std::max(next_id_, first_id);
    bytes_on_disk_ += seg.bytes;
    segments_.push_back(std::move(seg));
  }
  for (auto& [id, found] : records) {
    ++segments_[found.segment].pending;
    ++pending_total_;
    pending_ids_.insert(id);
    pending.push_back(LogRecord{id, std::move(found.payload), found.attempts});
  }
  rotate();
  if (fd_ < 0) return last_error_text_;
  remove_done_segments();
  return {};
}

bool SegmentLog::start_segment(std::uint64_t first_id) {
  if (fd_ >= 0) {
    if (dirty_ && options_.fsync != FsyncPolicy::kNever) ::fdatasync(fd_);
    ::close(fd_);
    fd_ = -1;
    dirty_ = false;
  }
  const std::string path = options_.dir + "/" + segment_name(first_id);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    last_error_ = AppendError::kIo;
    last_error_text_ = errno_text(("open " + path).c_str());
    return false;
  }
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  segments_.push_back(
      Segment{path, first_id, 0, static_cast<std::uint64_t>(std::max<off_t>(size, 0)), 0});
  bytes_on_disk_ += segments_.back().bytes;
  if (options_.fsync == FsyncPolicy::kAlways) {  // the new file's directory entry
    const int dir = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  return true;
}

bool SegmentLog::write_frame(std::uint8_t type, std::uint64_t id, std::string_view payload) {
  std::string frame;
  frame.reserve(kHeader + payload.size());
  put_u32(frame, kMagic);
  frame.push_back(static_cast<char>(type));
  put_u64(frame, id);
  put_u32(frame, static_cast<std::uint32_t>(payload.size()));
  put_u32(frame, frame_crc(std::string_view(frame).substr(4, 13), payload));
  frame.append(payload);
  if (fd_ < 0) {
    rotate();
    if (fd_ < 0) return false;
  }
  Segment& seg = segments_.back();
  std::size_t written = 0;
  while (written < frame.size()) {
    const ssize_t n = ::write(fd_, frame.data() + written, frame.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      last_error_ = errno == ENOSPC || errno == EDQUOT ? AppendError::kFull : AppendError::kIo;
      last_error_text_ = errno_text("write");
      // Cut the partial frame so that later frames stay readable.
      if (::ftruncate(fd_, static_cast<off_t>(seg.bytes)) != 0) {
        last_error_text_ += "; and the partial frame could not be cut: " + errno_text("ftruncate");
        ::close(fd_);
        fd_ = -1;
        rotate();  // later frames go to a new segment; open() skips this torn tail
      }
      return false;
    }
    written += static_cast<std::size_t>(n);
  }
  if (options_.fsync == FsyncPolicy::kAlways && type == kRecord && ::fdatasync(fd_) != 0) {
    last_error_ = AppendError::kIo;
    last_error_text_ = errno_text("fdatasync");
    ::ftruncate(fd_, static_cast<off_t>(seg.bytes));
    return false;
  }
  dirty_ = dirty_ || options_.fsync != FsyncPolicy::kAlways || type != kRecord;
  seg.bytes += frame.size();
  bytes_on_disk_ += frame.size();
  return true;
}

std::uint64_t SegmentLog::append(std::string_view payload) {
  last_error_ = AppendError::kNone;
  last_error_text_.clear();
  const std::uint64_t frame = kHeader + payload.size();
  if (payload.size() > kMaxPayload || bytes_on_disk_ + frame > options_.max_bytes) {
    last_error_ = AppendError::kFull;
    last_error_text_ = "the queue holds " + std::to_string(bytes_on_disk_) + " of its " +
                       std::to_string(options_.max_bytes) + " bytes";
    return 0;
  }
  const std::uint64_t id = next_id_;
  if (!write_frame(kRecord, id, payload)) return 0;
  ++next_id_;
  Segment& seg = segments_.back();
  seg.last_id = id;
  ++seg.pending;
  ++pending_total_;
  pending_ids_.insert(id);
  if (seg.bytes >= options_.segment_bytes) rotate();
  return id;
}

void SegmentLog::rotate() {
  // Segment names are their first id, and each segment holds the ids from its first to the next
  // segment's first: a segment without a record yet gives its id up.
  if (!segments_.empty() && segments_.back().first_id >= next_id_)
    next_id_ = segments_.back().first_id + 1;
  start_segment(next_id_);
}

SegmentLog::Segment* SegmentLog::segment_of(std::uint64_t id) {
  // Segments hold consecutive id ranges starting at first_id.
  auto it = std::upper_bound(segments_.begin(), segments_.end(), id,
                             [](std::uint64_t v, const Segment& s) { return v < s.first_id; });
  if (it == segments_.begin()) return nullptr;
  return &*std::prev(it);
}

bool SegmentLog::mark_done(std::uint64_t id) {
  Segment* seg = segment_of(id);
  if (seg == nullptr || pending_ids_.count(id) == 0) return false;
  if (!write_frame(kDone, id, {})) return false;
  pending_ids_.erase(id);
  --seg->pending;
  --pending_total_;
  // Everything done: a fresh segment, and the older ones go.
  if ((pending_total_ == 0 && segments_.back().bytes > 0) ||
      segments_.back().bytes >= options_.segment_bytes)
    rotate();
  remove_done_segments();
  return true;
}

bool SegmentLog::mark_attempts(std::uint64_t id, int attempts) {
  if (pending_ids_.count(id) == 0) return false;
  std::string payload;
  put_u32(payload, static_cast<std::uint32_t>(std::max(attempts, 0)));
  if (!write_frame(kAttempts, id, payload)) return false;
  if (segments_.back().bytes >= options_.segment_bytes) rotate();
  return true;
}

void SegmentLog::remove_done_segments() {
  // Oldest first, and never past a segment with a pending record: a done-mark in a newer
  // segment may refer to a record in an older one that still exists.
  while (segments_.size() > 1 && segments_.front().pending == 0) {
    std::error_code ec;
    fs::remove(segments_.front().path, ec);
    if (ec) return;  // kept; tried again on the next done-mark
    bytes_on_disk_ -= segments_.front().bytes;
    segments_.pop_front();
  }
}

void SegmentLog::sync() {
  if (fd_ >= 0 && dirty_) {
    ::fdatasync(fd_);
    dirty_ = false;
  }
}

int SegmentLog::take_sync_fd() {
  if (fd_ < 0 || !dirty_) return -1;
  dirty_ = false;
  return ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
}

}  // namespace sluice::queue
