// NginxProcess — nginx from Debian as a real upstream: one worker in a temp prefix, `daemon
// off`, on a free loopback port, stopped on destruction. With `ssl` the listener speaks TLS (the
// server block then names ssl_certificate / ssl_certificate_key). Tests that need it skip with
// SLUICE_REQUIRE_TOOL(NginxProcess::available(), "nginx") (fail in CI: bootstrap installs it).
//
//   NginxProcess nginx("  location / { return 200 \"nginx\\n\"; }");
//   NginxProcess tls("  ssl_certificate a.pem;\n  ssl_certificate_key a.key;\n  location ...",
//                    /*ssl=*/true);
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/sluice_process.hpp"

namespace sluice::testing {

// A port nothing listens on now (bound, read, closed).
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class NginxProcess {
 public:
  static bool available() { return ::access("/usr/sbin/nginx", X_OK) == 0; }
  explicit NginxProcess(const std::string& server_block, bool ssl = false) {
    port_ = free_port();
    ::mkdir(dir_.file("logs").c_str(), 0755);
    const std::string conf = "worker_processes 1;\nerror_log " + dir_.file("logs/error.log") +
                             ";\npid " + dir_.file("nginx.pid") +
                             ";\nevents { worker_connections 256; }\nhttp {\n access_log off;\n"
                             " client_body_temp_path " +
                             dir_.path() +
                             ";\n server {\n  listen 127.0.0.1:" + std::to_string(port_) +
                             (ssl ? " ssl" : "") + ";\n" + server_block + "\n }\n}\n";
    dir_.write("nginx.conf", conf);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/sbin/nginx", "nginx", "-p", dir_.path().c_str(), "-c",
              dir_.file("nginx.conf").c_str(), "-g", "daemon off;", nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 250 && !listening(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ~NginxProcess() {
    ::kill(pid_, SIGQUIT);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  NginxProcess(const NginxProcess&) = delete;
  NginxProcess& operator=(const NginxProcess&) = delete;
  int port() const { return port_; }
  std::string error_log() const { return sh_read(dir_.file("logs/error.log")); }

 private:
  bool listening() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }
  static std::string sh_read(const std::string& path) {
    std::string out;
    if (FILE* f = std::fopen(path.c_str(), "r")) {
      char buf[4096];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
      std::fclose(f);
    }
    return out;
  }
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace sluice::testing
