// Namespaces follow folders (docs/ARCHITECTURE.md, "Namespaces"): a file under src/A/B/ puts its
// code in sluice::A or sluice::A::B, a file under include/sluice/X/ in sluice or sluice::X; a
// nested helper namespace ending in `detail` is allowed under either. Forward declarations of
// other folders' names (`namespace sluice::server { class WorkerPool; }`) are not definitions
// and are not checked. A file that puts its code elsewhere fails here with file:line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "support/sluice_process.hpp"

namespace {

namespace fs = std::filesystem;

// The exceptions, each with its reason. Keep in step with the table in docs/ARCHITECTURE.md.
struct Exception {
  const char* path;  // a folder ("src/core/") or a file
  const char* ns;
};
constexpr Exception kExceptions[] = {
    // core implements the public headers, whose names are in `sluice` (and `sluice::detail`).
    {"src/core/", "sluice"},
    // public names embedders already use: renaming them would break their code.
    {"include/sluice/instance_state.hpp", "sluice::middleware"},
    {"include/sluice/adapters/", "sluice::httplib_adapter"},
    {"src/adapters/httplib/", "sluice::httplib_adapter"},
};

// sluice::A, sluice::A::B, ... for src/A/B/file (at least sluice::A); sluice, sluice::X for
// include/sluice/X/file.
std::vector<std::string> expected_namespaces(const fs::path& relative) {
  std::vector<std::string> parts;
  auto it = relative.begin();
  const bool public_header = *it == "include";
  ++it;
  if (!public_header) parts.push_back("sluice");
  for (; std::next(it) != relative.end(); ++it)
    parts.push_back(it->string());
  std::vector<std::string> out;
  std::string ns;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    ns += (i == 0 ? "" : "::") + parts[i];
    if (public_header || i >= 1) out.push_back(ns);
  }
  return out;
}

bool allowed(const std::string& relative, const std::string& ns) {
  for (const auto& e : kExceptions)
    if (relative.starts_with(e.path) && (ns == e.ns || ns.starts_with(std::string(e.ns) + "::")))
      return true;
  for (const auto& base : expected_namespaces(relative)) {
    if (ns == base) return true;
    // a nested helper namespace: sluice::A::detail, sluice::A::key_table_detail
    if (ns.starts_with(base + "::")) {
      const std::string rest = ns.substr(base.size() + 2);
      if (rest.find("::") == std::string::npos && rest.ends_with("detail")) return true;
    }
  }
  return false;
}

// True when the block opened at lines[open] holds only forward declarations (and comments).
bool forward_declarations_only(const std::vector<std::string>& lines, std::size_t open) {
  static const std::regex declaration(R"(^\s*((class|struct)\s+\w+;)?\s*(//.*)?$)");
  for (std::size_t i = open + 1; i < lines.size(); ++i) {
    if (lines[i].starts_with("}")) return true;
    if (!std::regex_match(lines[i], declaration)) return false;
  }
  return false;
}

TEST(Architecture, NamespacesFollowTheFolders) {
  const fs::path root = sluice::testing::source_dir();
  const std::regex opening(R"(^namespace\s+(sluice(::\w+)*)\s*\{)");
  std::vector<std::string> broken;
  std::size_t checked = 0;
  for (const char* base : {"include/sluice", "src"}) {
    for (const auto& entry : fs::recursive_directory_iterator(root / base)) {
      if (!entry.is_regular_file()) continue;
      const auto ext = entry.path().extension();
      if (ext != ".hpp" && ext != ".cpp" && ext != ".h") continue;
      const std::string relative = fs::relative(entry.path(), root).generic_string();
      std::ifstream in(entry.path());
      std::vector<std::string> lines;
      for (std::string line; std::getline(in, line);)
        lines.push_back(line);
      for (std::size_t i = 0; i < lines.size(); ++i) {
        std::smatch m;
        if (!std::regex_search(lines[i], m, opening)) continue;
        if (forward_declarations_only(lines, i)) continue;
        ++checked;
        const std::string ns = m[1];
        if (allowed(relative, ns)) continue;
        std::string want;
        for (const auto& e : expected_namespaces(fs::path(relative)))
          want += (want.empty() ? "" : " or ") + e;
        broken.push_back(relative + ":" + std::to_string(i + 1) + ": namespace " + ns +
                         " does not match the folder (expected " + want +
                         ", or an exception in docs/ARCHITECTURE.md)");
      }
    }
  }
  EXPECT_GT(checked, 300u) << "the walk found too few namespaces: wrong source dir?";
  for (const auto& b : broken)
    ADD_FAILURE() << b;
}

TEST(Architecture, NamespaceRuleReadsTheFolder) {
  EXPECT_TRUE(allowed("src/upstream/cluster.hpp", "sluice::upstream"));
  EXPECT_TRUE(allowed("src/upstream/tls/tls_client.hpp", "sluice::upstream"));
  EXPECT_TRUE(allowed("src/resilience/redis/redis_client.hpp", "sluice::resilience::redis"));
  EXPECT_TRUE(allowed("src/middleware/fault/fault_board.hpp", "sluice::middleware::fault"));
  EXPECT_TRUE(allowed("src/middleware/fault/fault_board.hpp", "sluice::middleware"));
  EXPECT_TRUE(allowed("src/resilience/key_table.cpp", "sluice::resilience::key_table_detail"));
  EXPECT_TRUE(allowed("include/sluice/chain.hpp", "sluice"));
  EXPECT_TRUE(allowed("include/sluice/extension/admin_endpoint.hpp", "sluice::extension"));
  EXPECT_TRUE(allowed("src/core/chain.cpp", "sluice::detail"));
  EXPECT_FALSE(allowed("src/upstream/cluster.hpp", "sluice::gateway::proxy"));
  EXPECT_FALSE(allowed("src/middleware/fault/fault_board.hpp", "sluice::chaos"));
  EXPECT_FALSE(allowed("src/middleware/fault/fault_board.hpp", "sluice::middleware::jwt"));
  EXPECT_FALSE(allowed("src/net/cidr.hpp", "sluice"));
  EXPECT_FALSE(allowed("src/net/cidr.hpp", "sluice::detail"));
  EXPECT_FALSE(allowed("include/sluice/chain.hpp", "sluice::middleware"));
}

}  // namespace
