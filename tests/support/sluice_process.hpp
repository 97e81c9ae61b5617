// SluiceProcess — starts the real `sluice` binary on port 0 of loopback with a config written
// by the test, waits for its port file, and stops it (SIGTERM) at the end of the test.
//
//   SluiceProcess gw(R"(routes: [{ name: r, handler: { type: echo } }])");
//   httplib::Client c("127.0.0.1", gw.port());
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace sluice::testing {

// A temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

class SluiceProcess {
 public:
  // `config` is YAML; `listen` and `admin.listen` default to 127.0.0.1:0 unless the config
  // has its own top-level `listen:` / `admin:` keys.
  explicit SluiceProcess(const std::string& config, bool add_listen_defaults = true);
  ~SluiceProcess();

  int port() const { return port_; }
  int admin_port() const { return admin_port_; }
  pid_t pid() const { return pid_; }
  const std::string& config_path() const { return config_path_; }
  std::string log() const;  // everything the process wrote to stderr/stdout so far
  void rewrite_config(const std::string& config) const;
  // Sends `sig` and waits for the exit; returns the exit status (or -1).
  int stop(int sig = 15);
  bool running() const;

 private:
  TempDir dir_;
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  int admin_port_ = 0;
};

// Runs `sluice ARGS...` to completion; returns the exit status and combined output.
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_sluice(const std::string& args);

// The whole file as bytes (empty when it cannot be read).
std::string read_file(const std::string& path);
// The file's lines, without their '\n' (none when it cannot be read).
std::vector<std::string> read_lines(const std::string& path);

std::string sluice_binary();
std::string source_dir();

}  // namespace sluice::testing
