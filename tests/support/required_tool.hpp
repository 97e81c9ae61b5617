// A test that needs an external program (redis-server, nginx) skips without it on a developer's
// machine, but fails in CI (CI=true), where scripts/bootstrap installs it: a missing install
// step must not pass as a green run that tested nothing.
//
//   SLUICE_REQUIRE_TOOL(RedisTestServer::available(), "redis-server");
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace sluice::testing {

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) != "" && std::string_view(ci) != "false";
}

}  // namespace sluice::testing

#define SLUICE_REQUIRE_TOOL(available, what)                                     \
  if (!(available)) {                                                            \
    if (::sluice::testing::running_in_ci())                                      \
      FAIL() << what << " is missing in CI (scripts/bootstrap must install it)"; \
    else                                                                         \
      GTEST_SKIP() << what << " is not installed";                               \
  }
