// docs/WRITING_MIDDLEWARE.md's waiting middleware, built from the files the guide quotes
// (examples/middleware/) and run on both hosts: the guide's code compiles, behaves as the guide
// says, and cannot drift from the files (every quoted file must equal its code block).
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "api_key_lookup/api_key_lookup.hpp"
#include "support/conformance_backends.hpp"
#include "support/sluice_process.hpp"

namespace sluice {
namespace {

using examples::ApiKeyLookupMiddleware;
using examples::KeyDirectory;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The ```cpp blocks of a Markdown file whose first line names a file ("// examples/..."),
// by that name.
std::map<std::string, std::string> quoted_files(const std::string& markdown) {
  std::map<std::string, std::string> blocks;
  std::istringstream in(markdown);
  std::string line;
  while (std::getline(in, line)) {
    if (line != "```cpp") continue;
    std::string block;
    while (std::getline(in, line) && line != "```")
      block += line + "\n";
    if (block.rfind("// examples/", 0) != 0) continue;
    blocks[block.substr(3, block.find('\n') - 3)] = block;
  }
  return blocks;
}

TEST(WritingMiddlewareGuide, QuotesEveryExampleFileExactly) {
  const std::filesystem::path root = testing::source_dir();
  const auto blocks = quoted_files(read_file(root / "docs/WRITING_MIDDLEWARE.md"));
  int files = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(root / "examples/middleware")) {
    if (!entry.is_regular_file()) continue;
    const std::string name = std::filesystem::relative(entry.path(), root).generic_string();
    ++files;
    auto it = blocks.find(name);
    ASSERT_NE(it, blocks.end()) << "the guide does not quote " << name;
    EXPECT_EQ(it->second, read_file(entry.path())) << name << " differs from its code block";
  }
  EXPECT_EQ(files, 2) << "the example has a header and a source file";
  EXPECT_EQ(blocks.size(), static_cast<std::size_t>(files)) << "a block names a missing file";
}

// Answers from its own thread after a short while, like a remote service would.
class SlowDirectory final : public KeyDirectory {
 public:
  void lookup(std::string key, Done done) override {
    ++lookups;
    std::thread([key = std::move(key), done = std::move(done)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (key == "k-123") {
        done("mobile-app");
      } else {
        done(std::nullopt);
      }
    }).detach();
  }
  std::atomic<int> lookups{0};
};

// What the request looked like after the middlewares, reported by the outermost one.
class Report final : public Middleware {
 public:
  std::string_view name() const override { return "report"; }
  Decision pre_handle(Exchange&) override { return Decision::next(); }
  void post_handle(Exchange& ex, std::chrono::nanoseconds) override {
    ex.response().set_header("X-Client-Seen", ex.request().header("X-Client"));
    ex.response().set_header("X-Key-Forwarded",
                             ex.request().has_header("X-Api-Key") ? "yes" : "no");
    ex.response().set_header("X-User", ex.context().user());
  }
};

struct Native {
  static std::unique_ptr<testing::Backend> make() { return testing::make_native_backend(); }
};
struct Httplib {
  static std::unique_ptr<testing::Backend> make() { return testing::make_httplib_backend(); }
};

template <class Kind>
class GuideExample : public ::testing::Test {
 protected:
  void SetUp() override {
    auto chain = std::make_shared<Chain>("guide");
    ASSERT_TRUE(chain->use(std::make_shared<Report>()).ok());
    ASSERT_TRUE(chain->use(std::make_shared<ApiKeyLookupMiddleware>("keys", directory)).ok());
    backend->start(chain);
    client = std::make_unique<httplib::Client>("127.0.0.1", backend->port());
  }
  std::shared_ptr<SlowDirectory> directory = std::make_shared<SlowDirectory>();
  std::unique_ptr<testing::Backend> backend = Kind::make();
  std::unique_ptr<httplib::Client> client;
};

using Hosts = ::testing::Types<Native, Httplib>;
class HostNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, Native> ? "native" : "httplib";
  }
};
TYPED_TEST_SUITE(GuideExample, Hosts, HostNames);

TYPED_TEST(GuideExample, AKnownKeyReachesTheHandlerAsItsClient) {
  auto res = this->client->Get("/x", httplib::Headers{{"X-Api-Key", "k-123"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok");
  EXPECT_EQ(res->get_header_value("X-Client-Seen"), "mobile-app");
  EXPECT_EQ(res->get_header_value("X-User"), "mobile-app");
  EXPECT_EQ(res->get_header_value("X-Key-Forwarded"), "no");
}

TYPED_TEST(GuideExample, AnUnknownKeyIsRefusedFromTheLookupsAnswer) {
  auto res = this->client->Get("/x", httplib::Headers{{"X-Api-Key", "k-999"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(nlohmann::json::parse(res->body)["error"], "unauthorized");
  EXPECT_EQ(res->get_header_value("X-Client-Seen"), "");
  EXPECT_EQ(this->directory->lookups.load(), 1);
}

TYPED_TEST(GuideExample, NoKeyIsRefusedWithoutALookup) {
  auto res = this->client->Get("/x");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(this->directory->lookups.load(), 0);
}

}  // namespace
}  // namespace sluice
