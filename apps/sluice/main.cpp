// sluice — the gateway binary.
//   sluice run [-c FILE] [--port-file FILE]   serve (embedded default config without -c)
//   sluice check -c FILE                      validate a config; exit 0 when valid, 1 otherwise
//   sluice hash-password [--iterations N]   a basic_auth password hash of the password on stdin
//   sluice version
#include <termios.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "gateway/config.hpp"
#include "gateway/gateway.hpp"
#include "security/password_hash.hpp"

namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kUsage = R"(sluice — a programmable HTTP gateway built from middleware chains

Usage:
  sluice run [-c FILE] [--port-file FILE]
      Serve the routes of FILE (or the embedded default config: 127.0.0.1:8080, admin on
      127.0.0.1:9901). --port-file writes the bound addresses ("listen HOST:PORT",
      "admin HOST:PORT"), useful with port 0.
      Signals: SIGHUP reloads the config; SIGTERM/SIGINT drain and exit 0.
  sluice check -c FILE
      Validate FILE; print every error with file:line:column. Exit 0 when valid, 1 otherwise.
  sluice check --print-default
      Print the embedded default config.
  sluice hash-password [--iterations N]
      Read a password (one line of stdin; typed without echo on a terminal) and print its
      PBKDF2-SHA256 hash for a basic_auth users file (default 600000 iterations).
  sluice version
  sluice --help
)";

struct Args {
  std::string command;
  std::string config;
  std::string port_file;
  bool print_default = false;
  std::string iterations = "600000";
  std::string error;
};

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> rest(argv + 1, argv + argc);
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const std::string& s = rest[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= rest.size()) {
        a.error = std::string(flag) + " needs a value";
        return {};
      }
      return rest[++i];
    };
    if (s == "-h" || s == "--help" || s == "help")
      a.command = "help";
    else if (s == "-c" || s == "--config")
      a.config = value("-c");
    else if (s == "--port-file")
      a.port_file = value("--port-file");
    else if (s == "--iterations")
      a.iterations = value("--iterations");
    else if (s == "--print-default")
      a.print_default = true;
    else if (s == "-v" || s == "--version")
      a.command = "version";
    else if (a.command.empty() && s[0] != '-')
      a.command = s;
    else
      a.error = "unexpected argument \"" + s + "\"";
  }
  if (a.command.empty()) a.command = "help";
  return a;
}

int check(const Args& a) {
  if (a.print_default) {
    std::cout << sluice::gateway::default_config_text();
    return 0;
  }
  if (a.config.empty()) {
    std::cerr << "sluice check: -c FILE is required\n";
    return 1;
  }
  sluice::GatewayServices services;
  auto outcome = sluice::gateway::load_config_file(a.config, nullptr, services);
  if (!outcome.ok()) {
    for (const auto& e : outcome.errors)
      std::cerr << e << "\n";
    std::cerr << outcome.errors.size() << (outcome.errors.size() == 1 ? " error" : " errors")
              << " in " << a.config << "\n";
    return 1;
  }
  std::cout << a.config << ": ok (" << outcome.config->routes->routes.size() << " routes)\n";
  return 0;
}

int hash_password(const Args& a) {
  int iterations = 0;
  try {
    iterations = std::stoi(a.iterations);
  } catch (...) {
  }
  if (iterations < sluice::security::PasswordHash::kMinIterations) {
    std::cerr << "sluice hash-password: --iterations must be a number >= "
              << sluice::security::PasswordHash::kMinIterations << "\n";
    return 2;
  }
  const bool tty = ::isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (tty) {  // a password typed at a terminal is not echoed
    std::cerr << "Password: " << std::flush;
    ::tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string password;
  const bool got = static_cast<bool>(std::getline(std::cin, password));
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!got || password.empty()) {
    std::cerr << "sluice hash-password: no password on stdin\n";
    return 1;
  }
  std::cout << sluice::security::PasswordHash::make(password, iterations).text() << "\n";
  return 0;
}

int run(const Args& a) {
  sluice::gateway::Gateway gateway({a.config, a.port_file});
  auto errors = gateway.start();
  if (!errors.empty()) {
    for (const auto& e : errors)
      spdlog::error("{}", e);
    spdlog::error("sluice did not start");
    return 1;
  }
  return gateway.wait();
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr, a line at a time: a crash or a kill must not eat the last lines.
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::flush_on(spdlog::level::trace);
  Args a = parse(argc, argv);
  if (!a.error.empty()) {
    std::cerr << "sluice: " << a.error << "\n\n" << kUsage;
    return 2;
  }
  if (a.command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (a.command == "version") {
    std::cout << "sluice " << kVersion << "\n";
    return 0;
  }
  if (a.command == "check") return check(a);
  if (a.command == "run") return run(a);
  if (a.command == "hash-password") return hash_password(a);
  std::cerr << "sluice: unknown command \"" << a.command << "\"\n\n" << kUsage;
  return 2;
}
