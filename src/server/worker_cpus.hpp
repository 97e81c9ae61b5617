// Worker CPU placement (`worker_cpu_affinity: auto`): worker i is pinned to one CPU of those the
// process may run on, and its SO_REUSEPORT listener asks the kernel (SO_INCOMING_CPU, honoured
// by the reuseport group since Linux 6.2) for the connections whose handshake arrived on that
// CPU. A connection is then read, answered and freed on the CPU where its packets arrive,
// instead of the hash sending about half of every client's connections to the other CPU
// (docs/PERFORMANCE.md, "Where the two workers' extra CPU goes": 20-40x more rescheduling IPIs
// and remote socket-buffer frees with the hash).
//
//   auto cpus = worker_cpus(2, allowed_cpus());  // {0, 1} on a 2-CPU machine
//   pin_current_thread(cpus[i]);                 // on worker i's thread
//   steer_connections_to_cpu(listener_fd, cpus[i]);
#pragma once

#include <string>
#include <vector>

namespace sluice::server {

// The CPUs the calling thread may run on (sched_getaffinity: taskset, cpusets), ascending.
std::vector<int> allowed_cpus();

// Worker i's CPU: allowed[i % allowed.size()]. With fewer CPUs than workers, several workers
// share a CPU (and the kernel spreads that CPU's connections over their listeners). Empty when
// `allowed` is empty.
std::vector<int> worker_cpus(int workers, const std::vector<int>& allowed);

// Pins the calling thread to `cpu`. Returns an error message, empty on success.
std::string pin_current_thread(int cpu);

// SO_INCOMING_CPU on a listening socket of a SO_REUSEPORT group: the kernel picks, among the
// group's listeners, one whose CPU is the one processing the connection's SYN (for loopback,
// the client's CPU; for a NIC, the CPU of its receive queue). Connections arriving on a CPU that
// no listener names are spread by the hash as before. Returns an error message, empty on
// success.
std::string steer_connections_to_cpu(int listener_fd, int cpu);

}  // namespace sluice::server
