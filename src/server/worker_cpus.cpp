#include "server/worker_cpus.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace sluice::server {

std::vector<int> allowed_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  }
  return out;
}

std::vector<int> worker_cpus(int workers, const std::vector<int>& allowed) {
  std::vector<int> out;
  if (allowed.empty()) return out;
  for (int i = 0; i < workers; ++i)
    out.push_back(allowed[static_cast<std::size_t>(i) % allowed.size()]);
  return out;
}

std::string pin_current_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (int rc = ::pthread_setaffinity_np(::pthread_self(), sizeof(set), &set); rc != 0) {
    return "cannot pin the worker to CPU " + std::to_string(cpu) + ": " + std::strerror(rc);
  }
  return {};
}

std::string steer_connections_to_cpu(int listener_fd, int cpu) {
  if (::setsockopt(listener_fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof(cpu)) != 0) {
    return "setsockopt(SO_INCOMING_CPU, " + std::to_string(cpu) +
           ") failed: " + std::strerror(errno);
  }
  return {};
}

}  // namespace sluice::server
