#include "observe/access_log/access_log_writer.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "observe/metrics/sharded.hpp"
#include "support/thread_files.hpp"

namespace sluice::observe {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("sluice_alw_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

// A FIFO that nobody reads yet: once its 64 KiB buffer is full, the writer thread is stuck in
// write(2), exactly like a log on a stalled disk. drain() then reads it until `expected` bytes
// arrived (10 s at most) and returns how many did.
class StalledFifo {
 public:
  explicit StalledFifo(const fs::path& path) : path_(path) {
    if (::mkfifo(path.c_str(), 0600) == 0) reader_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
  }
  ~StalledFifo() {
    if (reader_ >= 0) ::close(reader_);
  }
  StalledFifo(const StalledFifo&) = delete;
  StalledFifo& operator=(const StalledFifo&) = delete;
  bool ok() const { return reader_ >= 0; }
  const fs::path& path() const { return path_; }

  // Fills the pipe's buffer, so that the writer's very next write(2) waits; returns the bytes
  // written (drain() counts them too).
  std::size_t fill() {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return 0;
    std::size_t bytes = 0;
    const std::string chunk(4096, 'f');
    for (ssize_t n; (n = ::write(fd, chunk.data(), chunk.size())) > 0;)
      bytes += static_cast<std::size_t>(n);
    ::close(fd);
    return bytes;
  }

  std::size_t drain(std::size_t expected) {
    std::size_t bytes = 0;
    char buf[65536];
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (bytes < expected && std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = ::read(reader_, buf, sizeof buf);
      if (n > 0) bytes += static_cast<std::size_t>(n);
      if (n <= 0) std::this_thread::sleep_for(1ms);
    }
    return bytes;
  }

 private:
  fs::path path_;
  int reader_ = -1;
};

TEST(AccessLogWriter, WritesLinesInOrderToAFile) {
  TempDir dir;
  AccessLogWriter log({.path = dir / "access.log"});
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(log.write("{\"n\":" + std::to_string(i) + "}"));
  ASSERT_TRUE(log.write("already terminated\n"));
  ASSERT_TRUE(log.flush(5s));
  const auto lines = read_lines(dir / "access.log");
  ASSERT_EQ(lines.size(), 1001u);
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(lines[i], "{\"n\":" + std::to_string(i) + "}");
  EXPECT_EQ(lines[1000], "already terminated");
  EXPECT_EQ(log.written_total(), 1001u);
  EXPECT_EQ(log.dropped_total(), 0u);
}

TEST(AccessLogWriter, AppendsToAnExistingFile) {
  TempDir dir;
  { std::ofstream(dir / "access.log") << "old\n"; }
  {
    AccessLogWriter log({.path = dir / "access.log"});
    log.write("new");
  }  // the destructor drains the queue
  EXPECT_EQ(read_lines(dir / "access.log"), (std::vector<std::string>{"old", "new"}));
}

TEST(AccessLogWriter, ReopenAfterRenameStartsANewFile) {
  TempDir dir;
  AccessLogWriter log({.path = dir / "access.log"});
  log.write("before-1");
  log.write("before-2");
  ASSERT_TRUE(log.flush(5s));
  fs::rename(dir / "access.log", dir / "access.log.1");  // what logrotate does
  log.write("after-rename");  // still goes to the renamed file: queued before reopen()
  log.reopen();
  log.write("after-reopen");
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(read_lines(dir / "access.log.1"),
            (std::vector<std::string>{"before-1", "before-2", "after-rename"}));
  EXPECT_EQ(read_lines(dir / "access.log"), (std::vector<std::string>{"after-reopen"}));
  EXPECT_EQ(log.reopens_total(), 1u);
}

TEST(AccessLogWriter, FullQueueDropsAndCountsWithoutBlocking) {
  TempDir dir;
  // The writer stuck on a full FIFO: the queue must absorb and then drop.
  StalledFifo fifo(dir / "fifo");
  ASSERT_TRUE(fifo.ok());
  AccessLogWriter log({.path = fifo.path(), .max_queue_lines = 8});
  const std::string line(1023, 'x');
  int accepted = 0;
  int refused = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i)
    (log.write(line) ? accepted : refused)++;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_GT(refused, 800);  // at most 64 KiB in the pipe + one batch in flight + 8 queued
  EXPECT_EQ(log.dropped_total(), static_cast<uint64_t>(refused));

  // Drain the pipe; every accepted line arrives whole.
  const std::size_t expected = static_cast<std::size_t>(accepted) * 1024;
  const std::size_t bytes = fifo.drain(expected);
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ(log.written_total(), static_cast<uint64_t>(accepted));
  log.shutdown();
}

TEST(AccessLogWriter, ByteBoundDropsHugeLines) {
  TempDir dir;
  AccessLogWriter log({.path = dir / "access.log", .max_queue_bytes = 1024});
  EXPECT_FALSE(log.write(std::string(2000, 'x')));
  EXPECT_EQ(log.dropped_total(), 1u);
  EXPECT_TRUE(log.write("small"));
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(read_lines(dir / "access.log"), (std::vector<std::string>{"small"}));
}

TEST(AccessLogWriter, UnwritablePathReportsAndDrops) {
  std::vector<std::string> errors;
  std::mutex mu;
  AccessLogWriter log({.path = "/nonexistent-dir/sub/access.log"}, [&](const std::string& e) {
    std::lock_guard lock(mu);
    errors.push_back(e);
  });
  log.write("lost");
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(log.dropped_total(), 1u);
  EXPECT_EQ(log.written_total(), 0u);
  std::lock_guard lock(mu);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("cannot open"), std::string::npos);
}

TEST(AccessLogWriter, ShutdownDrainsThenRefuses) {
  TempDir dir;
  AccessLogWriter log({.path = dir / "access.log"});
  for (int i = 0; i < 100; ++i)
    log.write("line");
  log.shutdown();
  EXPECT_EQ(read_lines(dir / "access.log").size(), 100u);
  EXPECT_FALSE(log.write("late"));
  EXPECT_EQ(log.dropped_total(), 1u);
  EXPECT_TRUE(log.flush(1s));
}

TEST(AccessLogWriter, StdoutIsTheDefault) {
  ::testing::internal::CaptureStdout();
  {
    AccessLogWriter log({});
    log.write("{\"to\":\"stdout\"}");
    log.reopen();  // a no-op for stdout
    ASSERT_TRUE(log.flush(5s));
  }
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "{\"to\":\"stdout\"}\n");
}

// The writer thread has a file table of its own (core/own_file_table.hpp): the process's sockets
// are not in it, its file is not in the process's, and it still reopens and closes that file.
TEST(AccessLogWriter, WritesFromAFileTableOfItsOwn) {
  if (!sluice::testing::kOwnFileTables) GTEST_SKIP() << "ThreadSanitizer build: tables shared";
  using sluice::testing::descriptor_targets;
  TempDir dir;
  const int socket_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // the "worker's"
  ASSERT_GE(socket_fd, 0);
  const std::string socket_name = fs::read_symlink("/proc/self/fd/" + std::to_string(socket_fd));
  const fs::path path = dir / "access.log";
  auto targets_of = [](pid_t tid) {
    std::vector<std::string> out;
    for (const auto& [fd, target] : descriptor_targets(::getpid(), tid))
      if (fd > 2) out.push_back(target);
    return out;
  };
  {
    AccessLogWriter log({.path = path});
    const auto writers = sluice::testing::threads_named(::getpid(), "sluice-alog");
    ASSERT_EQ(writers.size(), 1u);
    const pid_t writer = writers[0];
    EXPECT_FALSE(sluice::testing::shares_file_table(::getpid(), writer));
    EXPECT_EQ(targets_of(writer), std::vector<std::string>{path.string()})
        << "open when the constructor returns, and nothing else (" << socket_name << ")";
    for (const auto& target : targets_of(::gettid()))
      EXPECT_NE(target, path.string()) << "the file is in the calling thread's table";
    ASSERT_TRUE(log.write("before"));
    ASSERT_TRUE(log.flush(5s));
    fs::rename(path, dir / "access.log.1");
    log.reopen();
    ASSERT_TRUE(log.write("after"));
    ASSERT_TRUE(log.flush(5s));
    EXPECT_EQ(targets_of(writer), std::vector<std::string>{path.string()})
        << "the renamed file is closed on the writer's thread";
    EXPECT_EQ(read_lines(dir / "access.log.1"), std::vector<std::string>{"before"});
    EXPECT_EQ(read_lines(path), std::vector<std::string>{"after"});
  }
  EXPECT_NE(::fcntl(socket_fd, F_GETFD), -1) << "the process's socket is still open";
  ::close(socket_fd);
}

// A record formatter as the access-log observer has one: here it upper-cases the record.
void shout(std::string_view record, ByteBuffer& out) {
  for (char c : record)
    out += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  out += '\n';
}

TEST(AccessLogWriter, RecordsAreFormattedOnTheWriterInQueueOrder) {
  TempDir dir;
  AccessLogWriter log({.path = dir / "access.log"});
  ASSERT_TRUE(log.write("raw-1"));
  ASSERT_TRUE(log.write_record(&shout, "record-1"));
  ASSERT_TRUE(log.write("raw-2\n"));
  ASSERT_TRUE(log.write_record(&shout, "record-2"));
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(read_lines(dir / "access.log"),
            (std::vector<std::string>{"raw-1", "RECORD-1", "raw-2", "RECORD-2"}));
  EXPECT_EQ(log.written_total(), 4u);
}

TEST(AccessLogWriter, RecordsCountAgainstBothBoundsAndReopen) {
  TempDir dir;
  AccessLogWriter log({.path = dir / "access.log", .max_queue_bytes = 1024});
  EXPECT_FALSE(log.write_record(&shout, std::string(2000, 'x')));  // over the byte bound
  EXPECT_EQ(log.dropped_total(), 1u);
  ASSERT_TRUE(log.write_record(&shout, "before"));
  ASSERT_TRUE(log.flush(5s));
  fs::rename(dir / "access.log", dir / "access.log.1");
  ASSERT_TRUE(log.write_record(&shout, "queued-before-reopen"));
  log.reopen();
  ASSERT_TRUE(log.write_record(&shout, "after"));
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(read_lines(dir / "access.log.1"),
            (std::vector<std::string>{"BEFORE", "QUEUED-BEFORE-REOPEN"}));
  EXPECT_EQ(read_lines(dir / "access.log"), (std::vector<std::string>{"AFTER"}));
}

// The queue is per worker: each worker thread (shard_index(), claimed as a worker starts) queues
// in its own shard, which no other worker locks. Here the writer is held in write(2) on a full
// FIFO, so what the two "workers" queue stays in their shards and can be counted there.
TEST(AccessLogWriter, EachWorkerQueuesInItsOwnShard) {
  TempDir dir;
  StalledFifo fifo(dir / "fifo");
  ASSERT_TRUE(fifo.ok());
  AccessLogWriter log({.path = fifo.path()});
  const std::string line(1023, 'x');  // 64 fill the pipe
  std::thread([&] {
    claim_shard_index(0);
    for (int i = 0; i < 200; ++i)
      ASSERT_TRUE(log.write(line));
  }).join();
  // Once the writer has taken more lines than the pipe holds (64), it waits in write(2) for
  // good, holding that batch: what is queued from then on stays in the shards.
  const auto taken = std::chrono::steady_clock::now() + 10s;
  while (log.queue_size_of_shard(0) > 200 - 65 && std::chrono::steady_clock::now() < taken)
    std::this_thread::sleep_for(1ms);
  const std::size_t first = log.queue_size_of_shard(0);
  ASSERT_LE(first, 200u - 65);
  std::thread([&] {
    claim_shard_index(1);
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(log.write(line));
  }).join();
  EXPECT_EQ(log.queue_size_of_shard(1), 5u);
  EXPECT_EQ(log.queue_size_of_shard(0), first);
  EXPECT_EQ(log.queue_size(), first + 5);

  EXPECT_EQ(fifo.drain(205u * 1024), 205u * 1024);
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(log.written_total(), 205u);
  EXPECT_EQ(log.queue_size(), 0u);
  log.shutdown();
}

// queue_lines bounds all workers together: with the writer held in write(2), two workers that
// keep writing fill the queue to its bound and no further (a worker may see it full up to a
// quarter early while the other holds an unused reservation), and every refusal is counted.
TEST(AccessLogWriter, BoundsHoldForAllWorkersTogether) {
  TempDir dir;
  StalledFifo fifo(dir / "fifo");
  ASSERT_TRUE(fifo.ok());
  constexpr std::size_t kBound = 64;
  AccessLogWriter log({.path = fifo.path(), .max_queue_lines = kBound});
  // The writer held in write(2) before the workers start: the pipe full, and one line that it
  // takes and cannot write. Woken only by the workers' lines, it could take them all (64 lines,
  // which fit in an empty pipe) after they were done: the queue then ended empty.
  const std::size_t filled = fifo.fill();
  ASSERT_GT(filled, 0u);
  const std::string line(1023, 'x');
  ASSERT_TRUE(log.write(line));
  const auto held = std::chrono::steady_clock::now() + 10s;
  while (log.queue_size() > 0 && std::chrono::steady_clock::now() < held)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(log.queue_size(), 0u);
  std::atomic<int> accepted{1};
  std::atomic<int> refused{0};
  std::vector<std::thread> workers;
  for (std::size_t w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      claim_shard_index(w);
      for (int i = 0; i < 1000; ++i) {
        (log.write(line) ? accepted : refused)++;
        EXPECT_LE(log.queue_size(), kBound);
      }
    });
  }
  for (auto& t : workers)
    t.join();
  EXPECT_GT(refused.load(), 1000);
  EXPECT_EQ(log.dropped_total(), static_cast<uint64_t>(refused.load()));
  EXPECT_LE(log.queue_size(), kBound);
  EXPECT_GE(log.queue_size(), kBound * 3 / 4);

  const std::size_t expected = filled + static_cast<std::size_t>(accepted.load()) * 1024;
  const std::size_t bytes = fifo.drain(expected);
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ(log.written_total(), static_cast<uint64_t>(accepted.load()));
  log.shutdown();
}

// Two workers writing while the file is rotated three times: every line arrives exactly once,
// whole; each worker's lines are in order across the files; a line queued before a reopen() is
// in a file rotated at or before that reopen.
TEST(AccessLogWriter, TwoWorkersLoseNothingAcrossReopens) {
  TempDir dir;
  const fs::path path = dir / "access.log";
  AccessLogWriter log({.path = path});
  constexpr int kLines = 20000;
  constexpr int kRotations = 3;
  std::atomic<int> queued[2] = {0, 0};  // lines [0, queued) of worker w are queued
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      claim_shard_index(static_cast<std::size_t>(w));
      const std::string pad(static_cast<std::size_t>(40 + 60 * w), 'a' + static_cast<char>(w));
      for (int i = 0; i < kLines; ++i) {
        ASSERT_TRUE(log.write("w" + std::to_string(w) + " " + std::to_string(i) + " " + pad));
        queued[w].store(i + 1, std::memory_order_release);
        if (i % 256 == 0) std::this_thread::sleep_for(200us);
      }
    });
  }
  int before_reopen[kRotations][2];
  for (int r = 0; r < kRotations; ++r) {
    while (queued[0].load() < (r + 1) * kLines / 4 || queued[1].load() < (r + 1) * kLines / 4)
      std::this_thread::sleep_for(100us);
    fs::rename(path, dir / ("access.log." + std::to_string(r + 1)));
    before_reopen[r][0] = queued[0].load(std::memory_order_acquire);
    before_reopen[r][1] = queued[1].load(std::memory_order_acquire);
    log.reopen();
    // The next rename needs the new file.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (log.reopens_total() < static_cast<uint64_t>(r + 1) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(100us);
    ASSERT_EQ(log.reopens_total(), static_cast<uint64_t>(r + 1));
  }
  for (auto& t : workers)
    t.join();
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(log.written_total(), 2u * kLines);
  EXPECT_EQ(log.dropped_total(), 0u);

  int next[2] = {0, 0};
  for (int f = 1; f <= kRotations + 1; ++f) {
    const fs::path file = f <= kRotations ? dir / ("access.log." + std::to_string(f)) : path;
    for (const std::string& line : read_lines(file)) {
      const int w = line.size() > 1 && (line[1] == '0' || line[1] == '1') ? line[1] - '0' : -1;
      ASSERT_TRUE(line.starts_with("w0 ") || line.starts_with("w1 ")) << line;
      const std::size_t space = line.find(' ', 3);
      ASSERT_NE(space, std::string::npos) << line;
      const int i = std::stoi(line.substr(3, space - 3));
      ASSERT_EQ(i, next[w]) << "worker " << w << " in " << file;
      ASSERT_EQ(line.substr(space + 1),
                std::string(static_cast<std::size_t>(40 + 60 * w), 'a' + static_cast<char>(w)))
          << line;
      ++next[w];
    }
    if (f <= kRotations) {
      EXPECT_GE(next[0], before_reopen[f - 1][0]) << "a line queued before reopen " << f;
      EXPECT_GE(next[1], before_reopen[f - 1][1]) << "a line queued before reopen " << f;
    }
  }
  EXPECT_EQ(next[0], kLines);
  EXPECT_EQ(next[1], kLines);
}

}  // namespace
}  // namespace sluice::observe
