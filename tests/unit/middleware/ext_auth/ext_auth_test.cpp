// ext_auth off a server worker (no io_context to call from: a failure) with and without
// failure_mode_allow, and its config errors. The calls themselves are tested through the real
// binary (tests/integration/identity_test.cpp).
#include <gtest/gtest.h>

#include "support/resilience_harness.hpp"

namespace sluice::testing {
namespace {

std::string config(const std::string& extra) {
  return R"(
routes:
  - name: api
    middlewares:
      - type: ext_auth
        address: "127.0.0.1:9"
        response_headers: [X-User]
        user_header: X-User
)" + extra +
         R"(    handler: { type: respond }
)";
}

TEST(ExtAuth, AFailureIs503OrPassesMarkedWithFailureModeAllow) {
  Harness closed(config(""));
  ASSERT_TRUE(closed.errors.empty()) << closed.errors[0];
  auto refused = closed.get("api", "/", {{"X-User", "forged"}});
  EXPECT_EQ(refused->status(), 503);
  EXPECT_EQ(refused->ex->detail(), "ext_auth_unavailable");
  EXPECT_EQ(closed.handler.calls, 0);

  Harness open(config("        failure_mode_allow: true\n"));
  ASSERT_TRUE(open.errors.empty()) << open.errors[0];
  auto passed = open.get("api", "/", {{"X-User", "forged"}});
  EXPECT_EQ(passed->status(), 200);
  EXPECT_EQ(passed->ex->detail(), "ext_auth_failed_open");
  EXPECT_EQ(passed->ex->context().user(), "");
  EXPECT_FALSE(passed->ex->request().has_header("X-User")) << "a client's claim never passes";
  EXPECT_NE(
      open.metrics_text().find(
          R"(sluice_auth_decisions_total{middleware="ext_auth",result="failed_open",type="ext_auth"} 1)"),
      std::string::npos);
}

TEST(ExtAuth, ConfigErrors) {
  auto first_error = [](const std::string& item) {
    Harness h("routes:\n  - name: api\n    middlewares:\n      - " + item +
              "\n    handler: { type: respond }\n");
    return h.errors.empty() ? std::string("(accepted)") : h.errors[0];
  };
  EXPECT_EQ(first_error("{ type: ext_auth }"),
            "test.yaml:4:9: routes[0].middlewares[0].address: is required: the authorization "
            "service as \"host:port\"");
  EXPECT_EQ(first_error("{ type: ext_auth, address: nohost }"),
            "test.yaml:4:36: routes[0].middlewares[0].address: must be host:port, got \"nohost\"");
  EXPECT_EQ(first_error("{ type: ext_auth, address: \"127.0.0.1:1\", path: check }"),
            "test.yaml:4:57: routes[0].middlewares[0].path: must start with '/'");
  EXPECT_EQ(first_error("{ type: ext_auth, address: \"127.0.0.1:1\", timeout_ms: 0 }"),
            "test.yaml:4:63: routes[0].middlewares[0].timeout_ms: must be > 0");
  // The address is an implicit one-endpoint cluster, resolved at load as `upstreams:` endpoints
  // are (.invalid never resolves, RFC 6761).
  EXPECT_EQ(first_error("{ type: ext_auth, address: \"nowhere.invalid:80\" }")
                .rfind("test.yaml:4:36: routes[0].middlewares[0].address: cannot resolve "
                       "\"nowhere.invalid\": ",
                       0),
            0u);
}

}  // namespace
}  // namespace sluice::testing
