// CapacityUpstream — runs tests/support/capacity_upstream.py: an HTTP upstream on loopback that
// serves at most `capacity` requests at once, each in `delay_ms`, and queues the rest (the shape
// of an overloaded service). Killed when the object goes away.
//
//   CapacityUpstream up(4, 20);   // up.port()
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "support/sluice_process.hpp"

namespace sluice::testing {

class CapacityUpstream {
 public:
  CapacityUpstream(int capacity, int delay_ms) {
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      const std::string script = source_dir() + "/tests/support/capacity_upstream.py";
      const std::string c = std::to_string(capacity), d = std::to_string(delay_ms);
      ::execlp("python3", "python3", script.c_str(), c.c_str(), d.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    FILE* f = ::fdopen(out[0], "r");
    if (f != nullptr) {
      if (std::fscanf(f, "%d", &port_) != 1) port_ = 0;
      std::fclose(f);
    }
  }
  ~CapacityUpstream() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  CapacityUpstream(const CapacityUpstream&) = delete;
  CapacityUpstream& operator=(const CapacityUpstream&) = delete;
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace sluice::testing
