// The store-and-forward queue's segment log on a real directory: records survive a reopen until
// marked done, ids go on after a restart, a torn tail and a checksum mismatch are skipped with a
// warning (records before them kept), segments are deleted once done, and the byte limit.
#include "queue/segment_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::queue {
namespace {

namespace fs = std::filesystem;

struct TempLogDir {
  TempLogDir() {
    std::string tmpl = (fs::temp_directory_path() / "sluice-seglog-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempLogDir() { fs::remove_all(path); }
  std::string path;
};

LogOptions options(const std::string& dir) {
  LogOptions o;
  o.dir = dir;
  o.fsync = FsyncPolicy::kAlways;
  return o;
}

std::vector<std::string> segment_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<LogRecord> reopen(const LogOptions& o, std::vector<std::string>& warnings) {
  SegmentLog log(o);
  std::vector<LogRecord> pending;
  EXPECT_EQ(log.open(pending, warnings), "");
  return pending;
}

TEST(SegmentLog, PendingRecordsComeBackAfterAReopenDoneOnesDoNot) {
  TempLogDir dir;
  {
    SegmentLog log(options(dir.path));
    std::vector<LogRecord> pending;
    std::vector<std::string> warnings;
    ASSERT_EQ(log.open(pending, warnings), "");
    EXPECT_TRUE(pending.empty());
    EXPECT_EQ(log.append("one"), 1u);
    EXPECT_EQ(log.append("two"), 2u);
    EXPECT_EQ(log.append(std::string(100'000, 'x')), 3u);
    EXPECT_TRUE(log.mark_done(2));
    EXPECT_FALSE(log.mark_done(2)) << "already done";
    EXPECT_EQ(log.pending(), 2u);
  }  // no close marker: as after kill -9
  std::vector<std::string> warnings;
  auto pending = reopen(options(dir.path), warnings);
  EXPECT_TRUE(warnings.empty());
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].id, 1u);
  EXPECT_EQ(pending[0].payload, "one");
  EXPECT_EQ(pending[1].id, 3u);
  EXPECT_EQ(pending[1].payload, std::string(100'000, 'x'));

  SegmentLog log(options(dir.path));
  std::vector<LogRecord> again;
  ASSERT_EQ(log.open(again, warnings), "");
  EXPECT_EQ(log.append("four"), 4u) << "ids go on after a restart";
  EXPECT_TRUE(log.mark_done(1)) << "a record of an older segment";
}

TEST(SegmentLog, ATornLastRecordIsSkippedWithAWarning) {
  TempLogDir dir;
  std::string segment;
  {
    SegmentLog log(options(dir.path));
    std::vector<LogRecord> pending;
    std::vector<std::string> warnings;
    ASSERT_EQ(log.open(pending, warnings), "");
    log.append("kept-1");
    log.append("kept-2");
    log.append(std::string(5000, 't'));
    segment = segment_files(dir.path).back();
  }
  // The crash hit while the third record was being written.
  fs::resize_file(segment, fs::file_size(segment) - 1000);
  std::vector<std::string> warnings;
  auto pending = reopen(options(dir.path), warnings);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].payload, "kept-1");
  EXPECT_EQ(pending[1].payload, "kept-2");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("torn record (4000 of 5000 payload bytes)"), std::string::npos)
      << warnings[0];

  // Appends go on in a fresh segment, readable after the torn one.
  {
    SegmentLog log(options(dir.path));
    std::vector<LogRecord> p;
    std::vector<std::string> w;
    ASSERT_EQ(log.open(p, w), "");
    EXPECT_EQ(log.append("after"), 3u) << "the torn record never was: its id is free";
  }
  warnings.clear();
  pending = reopen(options(dir.path), warnings);
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[2].payload, "after");
  EXPECT_EQ(warnings.size(), 1u) << "the torn tail is still there, still skipped";
}

TEST(SegmentLog, AChecksumMismatchEndsTheSegmentWithAWarning) {
  TempLogDir dir;
  std::string segment;
  {
    SegmentLog log(options(dir.path));
    std::vector<LogRecord> pending;
    std::vector<std::string> warnings;
    ASSERT_EQ(log.open(pending, warnings), "");
    log.append("good");
    log.append("flipped");
    segment = segment_files(dir.path).back();
  }
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(segment) - 2));
    f.put('X');  // inside "flipped"
  }
  std::vector<std::string> warnings;
  auto pending = reopen(options(dir.path), warnings);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].payload, "good");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("checksum mismatch"), std::string::npos) << warnings[0];
}

TEST(SegmentLog, SegmentsAreDeletedOnceEveryRecordInThemIsDone) {
  TempLogDir dir;
  LogOptions o = options(dir.path);
  o.fsync = FsyncPolicy::kNever;
  o.segment_bytes = 300;  // about 2 records of 100 bytes
  SegmentLog log(o);
  std::vector<LogRecord> pending;
  std::vector<std::string> warnings;
  ASSERT_EQ(log.open(pending, warnings), "");
  const std::string payload(100, 'p');
  for (int i = 0; i < 10; ++i)
    ASSERT_GT(log.append(payload), 0u);
  const std::size_t full = segment_files(dir.path).size();
  EXPECT_EQ(full, 4u);  // 3 records of 121 bytes each
  // Done out of order: record 1 keeps the oldest segment, so nothing may go yet.
  for (std::uint64_t id = 2; id <= 6; ++id)
    ASSERT_TRUE(log.mark_done(id));
  EXPECT_EQ(segment_files(dir.path).size(), full);
  ASSERT_TRUE(log.mark_done(1));
  EXPECT_LT(segment_files(dir.path).size(), full);
  for (std::uint64_t id = 7; id <= 10; ++id)
    ASSERT_TRUE(log.mark_done(id));
  EXPECT_EQ(segment_files(dir.path).size(), 1u) << "only the fresh, empty segment";
  EXPECT_EQ(log.bytes_on_disk(), 0u);
  EXPECT_EQ(log.pending(), 0u);
}

TEST(SegmentLog, AFullLogRefusesTheAppendAndKeepsWhatItHas) {
  TempLogDir dir;
  LogOptions o = options(dir.path);
  o.max_bytes = 1000;
  SegmentLog log(o);
  std::vector<LogRecord> pending;
  std::vector<std::string> warnings;
  ASSERT_EQ(log.open(pending, warnings), "");
  int accepted = 0;
  while (log.append(std::string(100, 'a')) != 0)
    ++accepted;
  EXPECT_EQ(accepted, 8);  // 8 x (21 + 100) bytes
  EXPECT_EQ(log.last_error(), SegmentLog::AppendError::kFull);
  ASSERT_TRUE(log.mark_done(1));
  EXPECT_EQ(log.append("fits again?"), 0u) << "a done-mark frees nothing until the segment goes";
  for (std::uint64_t id = 2; id <= 8; ++id)
    ASSERT_TRUE(log.mark_done(id));
  EXPECT_GT(log.append("fits again"), 0u);
}

TEST(SegmentLog, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32(0, "123456789"), 0xCBF43926u);
}

}  // namespace
}  // namespace sluice::queue

namespace sluice::queue {
namespace {

TEST(SegmentLog, AttemptCountsComeBackAfterAReopenTheLastOneWins) {
  TempLogDir dir;
  {
    SegmentLog log(options(dir.path));
    std::vector<LogRecord> pending;
    std::vector<std::string> warnings;
    ASSERT_EQ(log.open(pending, warnings), "");
    ASSERT_EQ(log.append("tried"), 1u);
    ASSERT_EQ(log.append("untried"), 2u);
    ASSERT_EQ(log.append("done"), 3u);
    EXPECT_TRUE(log.mark_attempts(1, 1));
    EXPECT_TRUE(log.mark_attempts(1, 2));
    EXPECT_TRUE(log.mark_attempts(3, 4));
    EXPECT_TRUE(log.mark_done(3));
    EXPECT_FALSE(log.mark_attempts(3, 5)) << "a done record has no attempts to keep";
    EXPECT_FALSE(log.mark_attempts(99, 1));
  }
  std::vector<std::string> warnings;
  const auto pending = reopen(options(dir.path), warnings);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].id, 1u);
  EXPECT_EQ(pending[0].attempts, 2);
  EXPECT_EQ(pending[1].id, 2u);
  EXPECT_EQ(pending[1].attempts, 0);
  EXPECT_TRUE(warnings.empty());
}

}  // namespace
}  // namespace sluice::queue
