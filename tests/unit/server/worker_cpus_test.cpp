// worker_cpu_affinity's placement: worker i on the i-th allowed CPU, wrapping when there are
// fewer CPUs than workers; and the two system calls it makes, on this machine's kernel.
#include "server/worker_cpus.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace sluice::server {
namespace {

TEST(WorkerCpus, EachWorkerGetsTheNextAllowedCpuAndWrapsAround) {
  EXPECT_EQ(worker_cpus(2, {0, 1}), (std::vector<int>{0, 1}));
  EXPECT_EQ(worker_cpus(2, {2, 5, 7}), (std::vector<int>{2, 5}));
  EXPECT_EQ(worker_cpus(3, {4, 6}), (std::vector<int>{4, 6, 4})) << "fewer CPUs than workers";
  EXPECT_EQ(worker_cpus(2, {}), std::vector<int>{});
}

TEST(WorkerCpus, PinningAThreadLeavesItOneAllowedCpu) {
  const auto allowed = allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  std::vector<int> seen;
  std::string error;
  std::thread t([&] {
    error = pin_current_thread(allowed.back());
    seen = allowed_cpus();
  });
  t.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(seen, std::vector<int>{allowed.back()});
  EXPECT_EQ(allowed_cpus(), allowed) << "only the pinned thread changed";
}

TEST(WorkerCpus, SteeringSetsSoIncomingCpuOnTheListener) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const int cpu = allowed_cpus().back();
  EXPECT_EQ(steer_connections_to_cpu(fd, cpu), "");
  int got = -2;
  socklen_t len = sizeof(got);
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &got, &len), 0);
  EXPECT_EQ(got, cpu);
  EXPECT_NE(steer_connections_to_cpu(-1, cpu), "") << "a failure is reported, not ignored";
  ::close(fd);
}

}  // namespace
}  // namespace sluice::server
