#include "support/sluice_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sluice::testing {

#ifndef SLUICE_BINARY
#define SLUICE_BINARY "sluice"
#endif
#ifndef SLUICE_SOURCE_DIR
#define SLUICE_SOURCE_DIR "."
#endif

std::string sluice_binary() {
  const char* env = std::getenv("SLUICE_BIN");
  return env != nullptr ? env : SLUICE_BINARY;
}
std::string source_dir() {
  return SLUICE_SOURCE_DIR;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string p = file(name);
  std::ofstream(p) << content;
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

namespace {

std::string with_defaults(const std::string& config) {
  std::string out;
  if (config.find("\nlisten:") == std::string::npos && config.rfind("listen:", 0) != 0)
    out += "listen: 127.0.0.1:0\n";
  if (config.find("\nadmin:") == std::string::npos && config.rfind("admin:", 0) != 0)
    out += "admin: { listen: 127.0.0.1:0 }\n";
  return out + config;
}
}  // namespace

SluiceProcess::SluiceProcess(const std::string& config, bool add_listen_defaults) {
  config_path_ = dir_.write("sluice.yaml", add_listen_defaults ? with_defaults(config) : config);
  log_path_ = dir_.file("sluice.log");
  const std::string port_file = dir_.file("ports");
  // Everything the child needs is made before fork(): after it, the child of this
  // multi-threaded process only makes system calls.
  const std::string bin = sluice_binary();
  const std::string exec_failed = "exec " + bin + " failed: ";
  const auto started = std::chrono::steady_clock::now();
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(bin.c_str(), bin.c_str(), "run", "-c", config_path_.c_str(), "--port-file",
            port_file.c_str(), static_cast<char*>(nullptr));
    // Said in the log, which the failure below shows: a binary being relinked while a test
    // starts it fails here (ETXTBSY or ENOENT), and looked like a gateway that wrote nothing.
    const char* why = ::strerrordesc_np(errno);
    [[maybe_unused]] auto w = ::write(2, exec_failed.data(), exec_failed.size());
    w = ::write(2, why, std::strlen(why));
    w = ::write(2, "\n", 1);
    ::_exit(127);
  }
  const auto deadline = started + std::chrono::seconds(20);
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited = true;
      break;
    }
    std::ifstream in(port_file);
    std::string kind, address;
    while (in >> kind >> address) {
      int port = std::stoi(address.substr(address.rfind(':') + 1));
      if (kind == "listen" && port_ == 0) port_ = port;
      if (kind == "admin") admin_port_ = port;
    }
    if (port_ != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
  std::string output = log();
  std::string why;
  if (exited) {
    pid_ = -1;  // reaped: nothing to stop
    why = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                            : "was killed by signal " + std::to_string(WTERMSIG(status));
  } else {
    stop(SIGKILL);
    why = "wrote no port file";
  }
  throw std::runtime_error("sluice did not start: it " + why + " after " + std::to_string(waited) +
                           " ms; its output:\n" + output);
}

SluiceProcess::~SluiceProcess() {
  stop(SIGTERM);
}

bool SluiceProcess::running() const {
  if (pid_ <= 0) return false;
  int status = 0;
  return ::waitpid(pid_, &status, WNOHANG) == 0;
}

std::string SluiceProcess::log() const {
  return read_file(log_path_);
}

void SluiceProcess::rewrite_config(const std::string& config) const {
  std::string tmp = config_path_ + ".tmp";
  std::ofstream(tmp) << with_defaults(config);
  std::rename(tmp.c_str(), config_path_.c_str());
}

int SluiceProcess::stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

CommandResult run_sluice(const std::string& args) {
  CommandResult r;
  std::string cmd = sluice_binary() + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.output.append(buf, n);
  int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace sluice::testing
