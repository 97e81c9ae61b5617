// The dependency rules of docs/ARCHITECTURE.md ("Folder map"), checked on every quoted
// #include under include/ and src/: a folder may include only the folders its row names. A new
// include against the rules fails here with the file, the line and the rule it breaks.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "support/sluice_process.hpp"

namespace {

namespace fs = std::filesystem;

// Folder (under src/, or "sluice" for include/sluice) -> the folders its files may include.
// Every folder may include itself. Keep in step with the table in docs/ARCHITECTURE.md.
const std::map<std::string, std::vector<std::string>>& rules() {
  static const std::map<std::string, std::vector<std::string>> r = {
      {"sluice", {"sluice"}},
      {"core", {"sluice"}},
      {"net", {"sluice", "core"}},
      {"security", {"sluice", "core"}},
      {"resilience", {"sluice", "core", "net"}},
      {"extension", {"sluice", "core"}},  // the implementation; the headers are public
      {"observe", {"sluice", "core", "net", "extension"}},
      {"server", {"sluice", "core", "net", "observe"}},
      {"upstream",
       {"sluice", "core", "net", "security", "observe", "resilience", "extension", "server"}},
      {"queue", {"sluice", "core", "net", "observe", "server", "resilience"}},  // the Redis client
      {"middleware",
       {"sluice", "core", "net", "security", "resilience", "observe", "upstream", "extension",
        "server", "queue"}},
      {"plugins", {"sluice", "core", "extension"}},
      {"adapters", {"sluice", "core"}},
      {"gateway",
       {"sluice", "core", "net", "security", "resilience", "observe", "server", "upstream",
        "extension", "middleware", "plugins", "queue"}},
  };
  return r;
}

// The folder a file belongs to: "sluice" for include/sluice/..., else the first folder under
// src/ ("middleware" for src/middleware/jwt/x.cpp).
std::string folder_of(const fs::path& relative) {
  auto it = relative.begin();
  if (*it == "include") return "sluice";
  ++it;
  return it->string();
}

bool allowed(const std::string& from, const fs::path& file, const std::string& target) {
  const std::string top = target.substr(0, target.find('/'));
  if (top == from) {
    // A middleware's folder includes its own folder and middleware/common only.
    if (from != "middleware") return true;
    auto it = file.begin();
    std::advance(it, 2);  // src/middleware/<own>/...
    const std::string own = it->string();
    return target.starts_with("middleware/common/") ||
           target.starts_with("middleware/" + own + "/");
  }
  const auto& ok = rules().at(from);
  return std::find(ok.begin(), ok.end(), top) != ok.end();
}

TEST(Architecture, IncludesFollowTheFolderRules) {
  const fs::path root = sluice::testing::source_dir();
  const std::regex include_line(R"(^\s*#\s*include\s+"([^"]+)\")");
  std::vector<std::string> broken;
  std::size_t checked = 0;
  for (const char* base : {"include/sluice", "src"}) {
    for (const auto& entry : fs::recursive_directory_iterator(root / base)) {
      if (!entry.is_regular_file()) continue;
      const auto ext = entry.path().extension();
      if (ext != ".hpp" && ext != ".cpp" && ext != ".h") continue;
      const fs::path relative = fs::relative(entry.path(), root);
      const std::string from = folder_of(relative);
      ASSERT_TRUE(rules().contains(from)) << relative << ": folder \"" << from
                                          << "\" has no row in the rules (add one, and to "
                                             "docs/ARCHITECTURE.md)";
      std::ifstream in(entry.path());
      std::string line;
      for (int n = 1; std::getline(in, line); ++n) {
        std::smatch m;
        if (!std::regex_search(line, m, include_line)) continue;
        const std::string target = m[1];
        if (target.find('/') == std::string::npos) continue;  // a system-style local header
        const std::string top = target.substr(0, target.find('/'));
        if (!rules().contains(top) && top != "sluice") continue;  // <prometheus/...> as "..."
        ++checked;
        if (!allowed(from, relative, target))
          broken.push_back(relative.string() + ":" + std::to_string(n) + ": " + from +
                           " may not include " + target);
      }
    }
  }
  EXPECT_GT(checked, 300u) << "the walk found too few includes: wrong source dir?";
  for (const auto& b : broken)
    ADD_FAILURE() << b;
}

}  // namespace
