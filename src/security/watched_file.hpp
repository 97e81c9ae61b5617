// WatchedFile<T> — a file parsed into an immutable T (a key set, a credentials table) and parsed
// again when it changes. Requests read the current T without a lock; at most once per interval
// one request stats the file (mtime, size, inode) and, if it changed, reads and parses it on its
// own thread before reading the T. A file that no longer parses keeps the previous T serving
// and is reported once per change through the callback (a log line and a metric).
//
//   auto file = WatchedFile<JwkSet>::open("/etc/sluice/jwks.json", parse_jwks, 5s, clock, report);
//   auto keys = file->current();   // a lease, released at the end of the scope
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <variant>

#include "sluice/clock.hpp"
#include "sluice/snapshot_cell.hpp"

namespace sluice::security {

// What identifies one version of a file on disk.
struct FileStamp {
  std::int64_t mtime_ns = 0;
  std::int64_t size = -1;
  std::uint64_t inode = 0;
  bool operator==(const FileStamp&) const = default;
};

// Reads a whole file; false with `error` set when it cannot.
bool read_whole_file(const std::string& path, std::string& out, FileStamp& stamp,
                     std::string& error);
// The file's current stamp (size -1 when it cannot be stat'ed).
FileStamp stamp_of(const std::string& path);

template <class T>
class WatchedFile {
 public:
  using Parsed = std::variant<std::shared_ptr<const T>, std::string>;  // the value or an error
  using Parser = std::function<Parsed(const std::string& text)>;
  // Called after each reload attempt of a changed file: ok, or the error ("file: message").
  using Report = std::function<void(bool ok, const std::string& message)>;

  // Reads and parses the file now; an error message when either fails.
  static std::variant<std::shared_ptr<WatchedFile>, std::string> open(
      std::string path, Parser parse, std::chrono::milliseconds interval, const Clock& clock,
      Report report = {}) {
    std::string text, error;
    FileStamp stamp;
    if (!read_whole_file(path, text, stamp, error)) return error;
    Parsed parsed = parse(text);
    if (auto* e = std::get_if<std::string>(&parsed)) return path + ": " + *e;
    return std::shared_ptr<WatchedFile>(
        new WatchedFile(std::move(path), std::move(parse), interval, clock, std::move(report),
                        std::get<std::shared_ptr<const T>>(std::move(parsed)), stamp));
  }

  typename SnapshotCell<T>::Lease current() {
    maybe_reload();
    return cell_.acquire();
  }
  // The current T as a shared_ptr, for work that leaves the request's thread (a lease may not).
  std::shared_ptr<const T> current_shared() {
    maybe_reload();
    return cell_.current();
  }
  const std::string& path() const { return path_; }

  // Checks the file now, whatever the interval (tests; a config reload).
  void check_now() {
    std::lock_guard lock(reload_mutex_);
    const FileStamp now_stamp = stamp_of(path_);
    if (now_stamp == stamp_ || now_stamp == failed_stamp_) return;
    std::string text, error;
    FileStamp read_stamp;
    Parsed parsed;
    if (!read_whole_file(path_, text, read_stamp, error)) {
      parsed = error;
    } else {
      parsed = parse_(text);
      if (auto* e = std::get_if<std::string>(&parsed)) *e = path_ + ": " + *e;
    }
    if (auto* e = std::get_if<std::string>(&parsed)) {
      failed_stamp_ = now_stamp;  // reported once, not on every check until it changes
      if (report_) report_(false, *e);
      return;
    }
    cell_.publish(std::get<std::shared_ptr<const T>>(std::move(parsed)));
    stamp_ = read_stamp;
    failed_stamp_ = kNoStamp;
    if (report_) report_(true, path_);
  }

 private:
  WatchedFile(std::string path, Parser parse, std::chrono::milliseconds interval,
              const Clock& clock, Report report, std::shared_ptr<const T> first, FileStamp stamp)
      : path_(std::move(path)),
        parse_(std::move(parse)),
        interval_(interval),
        clock_(clock),
        report_(std::move(report)),
        cell_(std::move(first)),
        stamp_(stamp),
        next_check_((clock.now() + interval).time_since_epoch().count()) {}

  void maybe_reload() {
    if (interval_.count() <= 0) return;
    const auto now = clock_.now();
    auto due = next_check_.load(std::memory_order_relaxed);
    if (now.time_since_epoch().count() < due) return;
    // One request claims this check; the others go on with the current T.
    if (!next_check_.compare_exchange_strong(due, (now + interval_).time_since_epoch().count(),
                                             std::memory_order_relaxed))
      return;
    check_now();
  }

  // Unlike any real stamp, also unlike a missing file's (size -1), which is reported once.
  static constexpr FileStamp kNoStamp{0, -2, 0};

  const std::string path_;
  const Parser parse_;
  const std::chrono::milliseconds interval_;
  const Clock& clock_;
  const Report report_;
  SnapshotCell<T> cell_;
  std::mutex reload_mutex_;
  FileStamp stamp_;                    // of the version serving now (guarded by reload_mutex_)
  FileStamp failed_stamp_ = kNoStamp;  // of the last version that failed to parse
  std::atomic<std::int64_t> next_check_;
};

}  // namespace sluice::security
