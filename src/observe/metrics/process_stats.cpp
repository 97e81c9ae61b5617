#include "observe/metrics/process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

namespace sluice::observe {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::optional<uint64_t> boot_time_seconds(const std::string& proc_root) {
  const auto text = read_file(proc_root + "/stat");
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("btime ", 0) == 0) return std::stoull(line.substr(6));
  }
  return std::nullopt;
}

uint64_t count_open_fds(const std::string& proc_root) {
  DIR* dir = ::opendir((proc_root + "/self/fd").c_str());
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  // Not counting the descriptor opendir() itself holds while listing its own process.
  return proc_root == "/proc" && n > 0 ? n - 1 : n;
}

}  // namespace

std::optional<ProcessStats> read_process_stats(const std::string& proc_root) {
  const auto stat = read_file(proc_root + "/self/stat");
  if (!stat) return std::nullopt;
  // The command name (field 2) is in parentheses and may contain spaces and ')': the fields
  // after it start after the last ')'.
  const auto close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(stat->substr(close + 1));
  // Fields 3.. of proc(5): state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
  // cmajflt utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue
  // starttime(22) vsize(23) rss(24).
  std::string field;
  uint64_t utime = 0, stime = 0, starttime = 0, vsize = 0;
  int64_t rss_pages = 0;
  for (int i = 3; i <= 24 && in >> field; ++i) {
    try {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
      if (i == 22) starttime = std::stoull(field);
      if (i == 23) vsize = std::stoull(field);
      if (i == 24) rss_pages = std::stoll(field);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (!in) return std::nullopt;

  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (ticks <= 0 || page <= 0) return std::nullopt;

  ProcessStats s;
  s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
  s.virtual_memory_bytes = vsize;
  s.resident_memory_bytes = rss_pages > 0 ? static_cast<uint64_t>(rss_pages) * page : 0;
  s.open_fds = count_open_fds(proc_root);
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    s.max_fds = lim.rlim_cur == RLIM_INFINITY ? 0 : static_cast<uint64_t>(lim.rlim_cur);
  }
  try {
    if (const auto btime = boot_time_seconds(proc_root)) {
      s.start_time_seconds =
          static_cast<double>(*btime) + static_cast<double>(starttime) / static_cast<double>(ticks);
    }
  } catch (const std::exception&) {
    // A malformed btime leaves start_time_seconds at 0 rather than failing the scrape.
  }
  return s;
}

}  // namespace sluice::observe
