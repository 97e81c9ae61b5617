// Plugins in the real binary: the example C plugin (examples/plugins/hello_plugin.c) loaded by
// path and SHA-256, serving requests; a tampered copy, another ABI version, a type outside the
// allow-list and a type that already exists are each refused with the reason and the file.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "plugins/plugin_loader.hpp"
#include "support/sluice_process.hpp"

namespace sluice::testing {
namespace {

#ifdef SLUICE_HELLO_PLUGIN

std::string sha_of(const std::string& path) {
  return plugins::sha256_hex(read_file(path));
}

std::string config_with(const std::string& path, const std::string& sha, const std::string& allow,
                        const std::string& greeting = "sluice") {
  return "plugins:\n"
         "  - path: " +
         path +
         "\n"
         "    sha256: " +
         sha +
         "\n"
         "    allow_types: [" +
         allow +
         "]\n"
         "routes:\n"
         "  - name: r\n"
         "    middlewares: [ { type: hello_header, greeting: " +
         greeting +
         " } ]\n"
         "    handler: { type: respond, status: 200, body: \"upstream\\n\" }\n";
}

// `sluice check` on `config`; returns the output after asserting it failed.
std::string check_fails(const TempDir& dir, const std::string& config) {
  auto file = dir.write("sluice.yaml", config);
  auto r = run_sluice("check -c " + file);
  EXPECT_EQ(r.status, 1) << r.output;
  return r.output;
}

TEST(Plugins, ExamplePluginServesRequestsInTheRealBinary) {
  SluiceProcess gw(config_with(SLUICE_HELLO_PLUGIN, sha_of(SLUICE_HELLO_PLUGIN), "hello_header"));
  httplib::Client c("127.0.0.1", gw.port());
  auto own = c.Get("/hello-plugin");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 200);
  EXPECT_EQ(own->body, "hello from a plugin, sluice\n");
  EXPECT_EQ(own->get_header_value("X-Hello"), "sluice");
  auto passed = c.Get("/other");
  ASSERT_TRUE(passed);
  EXPECT_EQ(passed->body, "upstream\n");
  EXPECT_EQ(passed->get_header_value("X-Hello"), "sluice") << "post_handle ran";
}

TEST(Plugins, ReloadWithTheSamePluginDoesNotLoadItAgain) {
  const std::string sha = sha_of(SLUICE_HELLO_PLUGIN);
  SluiceProcess gw(config_with(SLUICE_HELLO_PLUGIN, sha, "hello_header", "first"));
  httplib::Client c("127.0.0.1", gw.port());
  gw.rewrite_config(config_with(SLUICE_HELLO_PLUGIN, sha, "hello_header", "second"));
  ::kill(gw.pid(), SIGHUP);
  std::string seen;
  for (int i = 0; i < 200 && seen != "second"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto r = c.Get("/x");
    if (r) seen = r->get_header_value("X-Hello");
  }
  EXPECT_EQ(seen, "second");
  const std::string log = gw.log();
  std::size_t registrations = 0;
  for (auto at = log.find("hello_plugin registering"); at != std::string::npos;
       at = log.find("hello_plugin registering", at + 1)) {
    ++registrations;
  }
  EXPECT_EQ(registrations, 1u) << log;
}

TEST(Plugins, TamperedCopyIsRefusedBeforeLoading) {
  TempDir dir;
  const std::string good_sha = sha_of(SLUICE_HELLO_PLUGIN);
  std::string bytes = read_file(SLUICE_HELLO_PLUGIN);
  bytes[bytes.size() / 2] ^= 0x5A;
  const std::string copy = dir.write("hello_plugin.so", bytes);
  auto out = check_fails(dir, config_with(copy, good_sha, "hello_header"));
  EXPECT_NE(out.find("SHA-256 mismatch"), std::string::npos) << out;
  EXPECT_NE(out.find(copy), std::string::npos) << out;
  EXPECT_NE(out.find("sluice.yaml:3:"), std::string::npos) << "file:line:col of sha256\n" << out;
  EXPECT_EQ(out.find("registering"), std::string::npos) << "never dlopened\n" << out;

  auto run = run_sluice("run -c " + dir.file("sluice.yaml"));
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.output.find("SHA-256 mismatch"), std::string::npos) << run.output;
}

TEST(Plugins, OtherAbiVersionIsRefused) {
  TempDir dir;
  auto out = check_fails(dir, config_with(SLUICE_HELLO_PLUGIN_ABI99,
                                          sha_of(SLUICE_HELLO_PLUGIN_ABI99), "hello_header"));
  EXPECT_NE(out.find("unsupported plugin ABI version 99"), std::string::npos) << out;
  EXPECT_NE(out.find(SLUICE_HELLO_PLUGIN_ABI99), std::string::npos) << out;
}

TEST(Plugins, TypeOutsideTheAllowListIsRefused) {
  TempDir dir;
  auto out = check_fails(
      dir, config_with(SLUICE_HELLO_PLUGIN, sha_of(SLUICE_HELLO_PLUGIN), "something_else"));
  EXPECT_NE(out.find("\"hello_header\", which is not in its allow_types"), std::string::npos)
      << out;
  EXPECT_NE(out.find("sluice.yaml:4:"), std::string::npos) << out;
}

TEST(Plugins, TypeThatAlreadyExistsIsRefused) {
  TempDir dir;
  auto out = check_fails(
      dir, config_with(SLUICE_HELLO_PLUGIN_DUP, sha_of(SLUICE_HELLO_PLUGIN_DUP), "request_id"));
  EXPECT_NE(out.find("\"request_id\", which already exists"), std::string::npos) << out;
  EXPECT_NE(out.find(SLUICE_HELLO_PLUGIN_DUP), std::string::npos) << out;
}

#else
TEST(Plugins, NeedTheExamples) {
  GTEST_SKIP() << "configure with -DSLUICE_BUILD_EXAMPLES=ON";
}
#endif

}  // namespace
}  // namespace sluice::testing
