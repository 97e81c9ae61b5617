// Config loading: every error with file:line:column and the likely intended name; a valid
// config builds routes and chains; an unchanged middleware is reused by the next load.
#include <gtest/gtest.h>

#include <cctype>

#include "gateway/config.hpp"

namespace sluice::gateway {
namespace {

std::vector<std::string> errors_of(const std::string& yaml) {
  GatewayServices services;
  return load_config_text(yaml, "t.yaml", nullptr, services).errors;
}

// An empty file (or only a comment) has no YAML node, so no mark: the error said "t.yaml: ..."
// without a position (the config fuzz target's first finding). Now it points at 1:1.
TEST(Config, EmptyOrNonMapConfigIsAnErrorWithAPosition) {
  for (const char* yaml : {"", "# only a comment\n", "\n\n"}) {
    auto errors = errors_of(yaml);
    ASSERT_EQ(errors.size(), 1u) << yaml;
    EXPECT_EQ(errors[0], "t.yaml:1:1: the config must be a map (listen, admin, routes, ...)");
  }
  auto errors = errors_of("\n- a list\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("t.yaml:2:1: the config must be a map", 0), 0u) << errors[0];
}

// A route without a handler: the error about the missing section points at the route.
TEST(Config, MissingSectionErrorPointsAtTheMapThatLacksIt) {
  auto errors = errors_of("routes:\n  - name: api\n    handleb: { type: echo }\n");
  ASSERT_FALSE(errors.empty());
  bool found = false;
  for (const auto& e : errors) {
    if (e.find("missing handler type") == std::string::npos) continue;
    found = true;
    EXPECT_EQ(e.rfind("t.yaml:2:5: routes[0].handler.type: missing handler type", 0), 0u) << e;
  }
  EXPECT_TRUE(found) << errors[0];
}

// A key given twice: yaml-cpp keeps both and lookups use the first, so the second was
// silently ignored; and a scalar where a map belongs was overwritten in the document by the
// Settings view (operator= on a YAML::Node writes through), so the duplicate's errors had no
// position (a config fuzz target finding).
TEST(Config, DuplicateKeysAreErrorsWithPositions) {
  auto errors = errors_of("routes: []\nupstreams:\n  a: 0.25\n  a: 0.5\n");
  bool duplicate = false;
  for (const auto& e : errors) {
    EXPECT_EQ(e.rfind("t.yaml:", 0), 0u) << e;
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(e[7]))) << "no position: " << e;
    if (e.find("duplicate key \"a\" (first at line 3") != std::string::npos) {
      duplicate = true;
      EXPECT_EQ(e.rfind("t.yaml:4:3: upstreams: ", 0), 0u) << e;
    }
  }
  EXPECT_TRUE(duplicate) << ::testing::PrintToString(errors);
}

TEST(Config, ValidConfigBuildsRoutesAndChains) {
  GatewayServices services;
  auto out = load_config_text(R"(listen: 127.0.0.1:0
workers: 3
routes:
  - name: a
    match: { prefix: /a, methods: [GET] }
    middlewares: [ { type: request_id }, { type: headers, name: h, response: { set: { X: y } } } ]
    handler: { type: echo }
)",
                              "t.yaml", nullptr, services);
  ASSERT_TRUE(out.ok()) << (out.errors.empty() ? "" : out.errors[0]);
  EXPECT_EQ(out.config->settings.workers, 3);
  ASSERT_EQ(out.config->routes->routes.size(), 1u);
  auto chain = out.config->routes->routes[0]->chain->current();
  ASSERT_EQ(chain->active().size(), 2u);
  EXPECT_EQ(chain->active()[1]->name(), "h");
  EXPECT_EQ(out.config->settings.admin.text(), "127.0.0.1:9901");
}

TEST(Config, ErrorsCarryPositionsAndSuggestions) {
  auto errors = errors_of(R"(listen: 127.0.0.1:0
lisen: 1
routes:
  - name: a
    middlewares:
      - type: request_idd
      - type: headers
    handler: { type: respond, status: 999 }
  - name: a
    handler: { type: echo }
)");
  const std::vector<std::string> want = {
      "t.yaml:2:1: unknown key \"lisen\" (did you mean \"listen\"?)",
      "t.yaml:6:15: routes[0].middlewares[0].type: unknown middleware type \"request_idd\" (did "
      "you mean \"request_id\"?)",
      "t.yaml:7:9: routes[0].middlewares[1]: headers: nothing to change",
      "t.yaml:8:39: routes[0].handler.status: must be between 100 and 599",
      "t.yaml:9:11: routes[1].name: duplicate route name \"a\"",
  };
  EXPECT_EQ(errors, want);
}

// worker_cpu_affinity: off (default) or auto; a misspelt value and `auto` with an explicit
// `workers: 1` (nothing to pin) are errors with positions; a change needs a restart.
TEST(Config, WorkerCpuAffinity) {
  GatewayServices services;
  const std::string route = "routes: [{name: r, handler: {type: echo}}]\n";
  auto on = load_config_text("workers: 2\nworker_cpu_affinity: auto\n" + route, "t.yaml", nullptr,
                             services);
  ASSERT_TRUE(on.ok()) << on.errors[0];
  EXPECT_TRUE(on.config->settings.worker_cpu_affinity);
  auto off = load_config_text("workers: 2\n" + route, "t.yaml", nullptr, services);
  ASSERT_TRUE(off.ok()) << off.errors[0];
  EXPECT_FALSE(off.config->settings.worker_cpu_affinity);
  EXPECT_EQ(restart_required_changes(off.config->settings, on.config->settings),
            std::vector<std::string>{"worker_cpu_affinity"});
  EXPECT_EQ(errors_of("workers: 2\nworker_cpu_affinity: atuo\n" + route),
            std::vector<std::string>{"t.yaml:2:22: worker_cpu_affinity: unknown value \"atuo\" "
                                     "(did you mean \"auto\"?); expected one of: off, auto"});
  EXPECT_EQ(errors_of("workers: 1\nworker_cpu_affinity: auto\n" + route),
            std::vector<std::string>{"t.yaml:2:22: worker_cpu_affinity: has no effect with "
                                     "workers: 1 (one worker is not pinned)"});
  EXPECT_EQ(errors_of("worker_cpu_affinity: auto\n" + route), std::vector<std::string>{})
      << "the default worker count may be 1 (one CPU): the same file must load there";
}

TEST(Config, SyntaxErrorsHavePositions) {
  auto errors = errors_of("routes: [\n  { name: a\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("t.yaml:", 0), 0u) << errors[0];
}

TEST(Config, UnchangedMiddlewareIsReusedChangedOneIsNot) {
  GatewayServices services;
  const std::string a =
      "routes: [ { name: r, middlewares: [ { type: headers, name: h, response: "
      "{ set: { X: '1' } } } ], handler: { type: echo } } ]\n";
  const std::string b =
      "routes: [ { name: r, middlewares: [ { type: headers, name: h, response: "
      "{ set: { X: '2' } } } ], handler: { type: echo } } ]\n";
  auto first = load_config_text(a, "t.yaml", nullptr, services);
  auto same = load_config_text(a, "t.yaml", first.config.get(), services);
  auto changed = load_config_text(b, "t.yaml", first.config.get(), services);
  ASSERT_TRUE(first.ok() && same.ok() && changed.ok());
  auto mw = [](const LoadOutcome& o) {
    return o.config->routes->routes[0]->chain->current()->active()[0];
  };
  EXPECT_EQ(mw(first), mw(same));
  EXPECT_NE(mw(first), mw(changed));
}

}  // namespace
}  // namespace sluice::gateway
