#include "core/own_file_table.hpp"

#include <linux/close_range.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#if defined(__SANITIZE_THREAD__)
#define SLUICE_OWN_FILE_TABLE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLUICE_OWN_FILE_TABLE_TSAN 1
#endif
#endif

namespace sluice::detail {
namespace {

// Every signal but those a fault raises on this very thread: a crash handler (a sanitizer's, a
// backtrace) must still run here.
void block_async_signals() {
  sigset_t set;
  ::sigfillset(&set);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS})
    ::sigdelset(&set, sig);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

bool leave_shared_file_table(std::string_view thread) {
  block_async_signals();
#ifdef SLUICE_OWN_FILE_TABLE_TSAN
  (void)thread;
  return false;
#else
  // One call: the new table is made without the descriptors from 3 up (Linux copies only what is
  // outside the range), so this thread never holds a reference to a worker's socket, even
  // briefly, and the copy costs nothing however many connections are open.
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_UNSHARE) == 0) return true;
  const int error = errno;
  static std::once_flag logged;
  std::call_once(logged, [&] {
    spdlog::warn(
        "the {} thread shares the workers' file table (close_range(CLOSE_RANGE_UNSHARE): {}): "
        "every socket call of a worker then takes a file reference (about 2 % of a proxied "
        "request's CPU)",
        thread, std::strerror(error));
  });
  return false;
#endif
}

}  // namespace sluice::detail
