// What the threads of a process have open, from /proc and kcmp(2): for the tests of the
// background threads that leave the shared file table (core/own_file_table.hpp).
//
//   for (pid_t tid : threads_named(pid, "sluice-otlp"))
//     EXPECT_FALSE(shares_file_table(pid, tid));       // not the main thread's table
//   auto open = descriptor_targets(pid, tid);          // {"socket:[123]", "/tmp/x/access.log"}
#pragma once

#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace sluice::testing {

// Whether background threads get tables of their own in this build: not under ThreadSanitizer
// (own_file_table.hpp says why), where their tests skip.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kOwnFileTables = false;
#else
inline constexpr bool kOwnFileTables = true;
#endif

// True when the two threads (any process) use the same file table.
inline bool shares_file_table(pid_t a, pid_t b) {
  return ::syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0;
}

// The thread ids of `pid`, all of them or those whose name (comm) is `name`.
inline std::vector<pid_t> threads_named(pid_t pid, const std::string& name = "") {
  std::vector<pid_t> out;
  std::error_code ec;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& e : std::filesystem::directory_iterator(task, ec)) {
    std::string comm;
    std::getline(std::ifstream(e.path() / "comm"), comm);
    if (name.empty() || comm == name) out.push_back(std::stoi(e.path().filename().string()));
  }
  return out;
}

// What each descriptor of the thread's table names ("socket:[8743015]", "/tmp/access.log",
// "anon_inode:[eventpoll]"), by descriptor number.
inline std::vector<std::pair<int, std::string>> descriptor_targets(pid_t pid, pid_t tid) {
  std::vector<std::pair<int, std::string>> out;
  std::error_code ec;
  const std::string fd_dir =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/fd";
  for (const auto& e : std::filesystem::directory_iterator(fd_dir, ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(e.path(), link_ec);
    if (!link_ec) out.emplace_back(std::stoi(e.path().filename().string()), target.string());
  }
  return out;
}

// The sockets open in the thread's table ("socket:[N]").
inline std::set<std::string> sockets_of(pid_t pid, pid_t tid) {
  std::set<std::string> out;
  for (const auto& [fd, target] : descriptor_targets(pid, tid))
    if (target.starts_with("socket:")) out.insert(target);
  return out;
}

}  // namespace sluice::testing
