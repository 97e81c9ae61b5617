#include "observe/metrics/process_stats.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <vector>

namespace sluice::observe {
namespace {

TEST(ProcessStats, ReadsPlausibleValues) {
  volatile double burn = 0;
  for (int i = 0; i < 5000000; ++i)
    burn = burn + i * 0.5;
  const auto s = read_process_stats();
  ASSERT_TRUE(s);
  EXPECT_GT(s->cpu_seconds, 0.0);
  EXPECT_GT(s->resident_memory_bytes, 1u << 20);
  EXPECT_GE(s->virtual_memory_bytes, s->resident_memory_bytes);
  EXPECT_GE(s->open_fds, 3u);
  EXPECT_GT(s->max_fds, s->open_fds);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(s->start_time_seconds, now + 1);
  EXPECT_GT(s->start_time_seconds, now - 3600);
}

TEST(ProcessStats, CountsOpenedDescriptors) {
  const auto before = read_process_stats();
  ASSERT_TRUE(before);
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i)
    fds.push_back(::open("/dev/null", O_RDONLY));
  const auto after = read_process_stats();
  for (int fd : fds)
    ::close(fd);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->open_fds, before->open_fds + 5);
}

TEST(ProcessStats, MissingProcGivesNullopt) {
  EXPECT_FALSE(read_process_stats("/nonexistent-proc"));
}

}  // namespace
}  // namespace sluice::observe
