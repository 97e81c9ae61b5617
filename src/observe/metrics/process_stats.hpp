// ProcessStats: the numbers behind Prometheus' standard process_* metrics, read from /proc.
//
//   auto s = sluice::observe::read_process_stats();
//   if (s) cpu_seconds.Set(s->cpu_seconds);   // process_cpu_seconds_total
//   // resident_memory_bytes, virtual_memory_bytes, open_fds, max_fds, start_time_seconds
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sluice::observe {

struct ProcessStats {
  double cpu_seconds = 0;              // utime + stime          -> process_cpu_seconds_total
  uint64_t resident_memory_bytes = 0;  // RSS                    -> process_resident_memory_bytes
  uint64_t virtual_memory_bytes = 0;   // vsize                  -> process_virtual_memory_bytes
  uint64_t open_fds = 0;               // entries of /proc/self/fd -> process_open_fds
  uint64_t max_fds = 0;                // soft RLIMIT_NOFILE     -> process_max_fds
  double start_time_seconds = 0;       // unix time              -> process_start_time_seconds
};

// Reads /proc/self/stat, /proc/stat (btime), /proc/self/fd and the fd limit; nullopt when
// /proc/self/stat cannot be read or parsed (e.g. not Linux). `proc_root` is for tests.
std::optional<ProcessStats> read_process_stats(const std::string& proc_root = "/proc");

}  // namespace sluice::observe
