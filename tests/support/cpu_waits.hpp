// How long threads waited, runnable, for a CPU: the second field of a thread's
// /proc/.../schedstat (Linux, in ns). A test whose bound is "the gateway answered soon" adds
// this much for a machine too busy to run the gateway (or the test's own client), so that the
// bound measures sluice and not the scheduler. Waiting on a timer, a lock or a socket is not
// a wait for a CPU, so a slow sweep or a late answer still fails such a bound.
//
//   const auto before = run_queue_waits(gw.pid());
//   ... the part the bound covers ...
//   const auto starved = most_waited(before, run_queue_waits(gw.pid()));
//
//   const auto mine = this_thread_run_queue_wait();  // a client thread's own, before and after
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>

namespace sluice::testing {

// Each thread of process `pid`: its wait so far (ns), by thread id.
inline std::map<std::string, long long> run_queue_waits(pid_t pid) {
  std::map<std::string, long long> out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
    long long on_cpu = 0, waited = 0;
    if (std::ifstream(t.path() / "schedstat") >> on_cpu >> waited)
      out[t.path().filename().string()] = waited;
  }
  return out;
}

// The most any one thread waited between two run_queue_waits() (a thread that started in
// between counts from 0).
inline std::chrono::nanoseconds most_waited(const std::map<std::string, long long>& before,
                                            const std::map<std::string, long long>& after) {
  long long most = 0;
  for (const auto& [tid, waited] : after) {
    const auto b = before.find(tid);
    most = std::max(most, waited - (b == before.end() ? 0 : b->second));
  }
  return std::chrono::nanoseconds(most);
}

// The calling thread's wait so far.
inline std::chrono::nanoseconds this_thread_run_queue_wait() {
  long long on_cpu = 0, waited = 0;
  std::ifstream("/proc/thread-self/schedstat") >> on_cpu >> waited;
  return std::chrono::nanoseconds(waited);
}

}  // namespace sluice::testing
