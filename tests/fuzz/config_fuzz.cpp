// libFuzzer target: the gateway's config loader (gateway/config.hpp), YAML text to a loaded
// config or errors, with every middleware, handler and section of the library registered. Each
// load that succeeds is the `previous` config of the next (a reload reuses unchanged
// middlewares). Checked besides "no crash, no uncaught exception, no ASan/UBSan report":
// a load either succeeds with no error or fails with errors that each begin with
// "fuzz.yaml:<line>:<column>: ".
//
// The process runs in a scratch directory (relative paths, such as an access log's, land
// there), and inputs naming `plugins` are skipped: loading one dlopen()s a path from the input.
//
//   make fuzz-build && build-fuzz/config_fuzz tests/fuzz/corpus/config
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/config.hpp"
#include "sluice/services.hpp"

namespace {

void check(bool ok, const char* what, const std::string& detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "config_fuzz: %s %s\n", what, detail.c_str());
  std::abort();
}

// "fuzz.yaml:12:3: ..."
bool has_position(std::string_view e) {
  constexpr std::string_view kFile = "fuzz.yaml:";
  if (!e.starts_with(kFile)) return false;
  e.remove_prefix(kFile.size());
  for (int part = 0; part < 2; ++part) {
    std::size_t digits = 0;
    while (digits < e.size() && std::isdigit(static_cast<unsigned char>(e[digits])))
      ++digits;
    if (digits == 0 || digits >= e.size() || e[digits] != ':') return false;
    e.remove_prefix(digits + 1);
  }
  return e.starts_with(" ");
}

// libFuzzer reads its arguments after this returns: corpus directories and the artifact
// prefix become absolute, so they still name the same places after the chdir below.
void make_paths_absolute(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string prefix;
    if (arg.starts_with("-artifact_prefix=")) {
      prefix = "-artifact_prefix=";
    } else if (arg.starts_with("-")) {
      continue;
    }
    const std::string path = arg.substr(prefix.size());
    std::string absolute = prefix + std::filesystem::absolute(path).string();
    if (path.ends_with("/") && !absolute.ends_with("/")) absolute += "/";
    argv[i] = strdup(absolute.c_str());  // lives as long as the process, as argv does
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  make_paths_absolute(*argc, *argv);
  char dir[] = "/tmp/sluice-config-fuzz-XXXXXX";
  check(::mkdtemp(dir) != nullptr && ::chdir(dir) == 0, "scratch directory");
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (text.find("plugins") != std::string::npos) return 0;
  static sluice::GatewayServices services;
  if (!services.metrics) services.metrics = std::make_shared<prometheus::Registry>();
  static std::shared_ptr<sluice::gateway::LoadedConfig> previous;
  auto outcome = sluice::gateway::load_config_text(text, "fuzz.yaml", previous.get(), services);
  if (outcome.ok()) {
    check(outcome.config->routes != nullptr, "a loaded config has a route table");
    previous = outcome.config;
    return 0;
  }
  check(!outcome.errors.empty(), "a failed load says why");
  for (const auto& e : outcome.errors)
    check(has_position(e), "error without file:line:column:", e);
  return 0;
}
