// The naming rule of middleware stats (docs/OBSERVABILITY.md, "Middleware stats";
// docs/WRITING_MIDDLEWARE.md §6), checked on every "sluice_..." string under src/middleware/:
// a family of middleware type T is named sluice_T_..., is declared in
// src/middleware/T/T_stats.cpp beside its class, and is declared once. The three documented
// exceptions: the auth types' shared sluice_auth_* (middleware/common/auth_metrics.cpp, with a
// `type` label), the gate's sluice_middleware_skipped_total (it wraps any type) and store and
// forward's sluice_queue_* (declared with the fallback's stats, named for the queue).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "support/sluice_process.hpp"

namespace {

namespace fs = std::filesystem;

// Empty when `name`, found in src/middleware/<folder>/<file>, follows the rule; else why not.
std::string breaks_rule(const std::string& folder, const std::string& file,
                        const std::string& name) {
  if (folder == "common") {
    if (file != "auth_metrics.cpp") return "only auth_metrics.cpp declares families in common/";
    if (!name.starts_with("sluice_auth_")) return "common/ declares only the shared sluice_auth_*";
    return {};
  }
  if (folder == "fallback" && name.starts_with("sluice_queue_"))  // store and forward's own
    return file == "fallback_stats.cpp" ? "" : "declare it in fallback/fallback_stats.cpp";
  if (folder == "gate" && name == "sluice_middleware_skipped_total")
    return file == "gate_stats.cpp" ? "" : "declare it in gate/gate_stats.cpp";
  if (file != folder + "_stats.cpp") return "declare it in " + folder + "/" + folder + "_stats.cpp";
  if (!name.starts_with("sluice_" + folder + "_"))
    return "name it sluice_" + folder + "_<what>[_total] (the registered type)";
  return {};
}

TEST(Architecture, MiddlewareStatsFollowTheNamingRule) {
  const fs::path root = fs::path(sluice::testing::source_dir()) / "src" / "middleware";
  const std::regex metric(R"re("(sluice_[a-z0-9_]+)")re");
  std::map<std::string, std::vector<std::string>> declared;  // name -> where
  std::vector<std::string> broken;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const auto ext = entry.path().extension();
    if (ext != ".hpp" && ext != ".cpp") continue;
    const fs::path relative = fs::relative(entry.path(), root);
    const std::string folder = relative.begin()->string();
    const std::string file = entry.path().filename().string();
    std::ifstream in(entry.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      for (std::sregex_iterator it(line.begin(), line.end(), metric), end; it != end; ++it) {
        const std::string name = (*it)[1];
        const std::string where = "src/middleware/" + relative.string() + ":" + std::to_string(n);
        declared[name].push_back(where);
        if (auto why = breaks_rule(folder, file, name); !why.empty())
          broken.push_back(where + ": " + name + ": " + why);
      }
    }
  }
  EXPECT_GT(declared.size(), 20u) << "the walk found too few families: wrong source dir?";
  for (const auto& [name, where] : declared) {
    if (where.size() > 1) {
      std::string all;
      for (const auto& w : where)
        all += " " + w;
      broken.push_back(name + " is declared more than once:" + all);
    }
  }
  for (const auto& b : broken)
    ADD_FAILURE() << b;
}

// The rule itself, on names that must pass and fail.
TEST(Architecture, MiddlewareStatsRuleCases) {
  EXPECT_EQ(breaks_rule("rate_limit", "rate_limit_stats.cpp", "sluice_rate_limit_decisions_total"),
            "");
  EXPECT_NE(breaks_rule("rate_limit", "rate_limit_stats.cpp", "sluice_rl_decisions_total"), "");
  EXPECT_NE(breaks_rule("rate_limit", "register.cpp", "sluice_rate_limit_decisions_total"), "");
  EXPECT_EQ(breaks_rule("common", "auth_metrics.cpp", "sluice_auth_decisions_total"), "");
  EXPECT_NE(breaks_rule("common", "auth_metrics.cpp", "sluice_jwt_decisions_total"), "");
  EXPECT_EQ(breaks_rule("gate", "gate_stats.cpp", "sluice_middleware_skipped_total"), "");
  EXPECT_NE(breaks_rule("fault", "fault_stats.cpp", "sluice_chaos_injected_total"), "");
}

}  // namespace
