#include "observe/access_log/access_log_writer.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
  // A FIFO that nobody reads yet: once its 64 KiB buffer is full the writer thread is stuck in
  // write(2), exactly like a log on a stalled disk, and the queue must absorb and then drop.
  const fs::path fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  AccessLogWriter log({.path = fifo, .max_queue_lines = 8});
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
  std::size_t bytes = 0;
  char buf[65536];
  const std::size_t expected = static_cast<std::size_t>(accepted) * 1024;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (bytes < expected && std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::read(reader, buf, sizeof buf);
    if (n > 0) bytes += static_cast<std::size_t>(n);
    if (n <= 0) std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(log.flush(5s));
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ(log.written_total(), static_cast<uint64_t>(accepted));
  log.shutdown();
  ::close(reader);
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
  testing::internal::CaptureStdout();
  {
    AccessLogWriter log({});
    log.write("{\"to\":\"stdout\"}");
    log.reopen();  // a no-op for stdout
    ASSERT_TRUE(log.flush(5s));
  }
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "{\"to\":\"stdout\"}\n");
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

}  // namespace
}  // namespace sluice::observe
