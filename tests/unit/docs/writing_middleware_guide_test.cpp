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

#include <prometheus/registry.h>
#include <yaml-cpp/yaml.h>

#include "api_key_lookup/api_key_lookup.hpp"
#include "core/config_errors.hpp"
#include "core/http_message.hpp"
#include "sluice/exchange_driver.hpp"
#include "sluice/extension/admin_endpoint.hpp"
#include "sluice/registry.hpp"
#include "support/conformance_backends.hpp"
#include "support/manual_host.hpp"
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
  EXPECT_EQ(files, 3) << "the example has a header, a source file and register.cpp";
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

// register.cpp of the guide: the factory reads `keys:`, the stats land in the host's registry
// under the instance's route and name, and GET /api_key_lookup reports them.
class GuideHost final : public extension::AdminView {
 public:
  GatewayServices& services() override { return services_; }
  std::shared_ptr<const ConfigBuild> config() const override { return build_; }
  std::vector<extension::RouteView> routes() const override { return {{"api", chain}}; }

  GatewayServices services_{.metrics = std::make_shared<prometheus::Registry>()};
  std::shared_ptr<const ConfigBuild> build_ = std::make_shared<ConfigBuild>();
  std::shared_ptr<Chain> chain = std::make_shared<Chain>("api");
};

TEST(WritingMiddlewareGuide, RegisteredFromConfigWithStatsAndAnAdminEndpoint) {
  GuideHost host;
  const auto* factory = MiddlewareRegistry::global().find("api_key_lookup");
  ASSERT_NE(factory, nullptr) << "register.cpp registers the type";
  ConfigErrors errors("guide.yaml");
  const YAML::Node item = YAML::Load("{keys: {k-123: mobile-app}}");
  Settings s = errors.settings(item, "routes[0].middlewares[0]");
  MiddlewareSpec spec{"keys", "api_key_lookup", "api", &host.services_, host.build_.get()};
  auto middleware = (*factory)(spec, s);
  errors.finish();
  ASSERT_TRUE(errors.empty()) << errors.all().front();
  ASSERT_NE(middleware, nullptr);
  ASSERT_TRUE(host.chain->use(std::make_shared<Report>()).ok());
  ASSERT_TRUE(host.chain->use(middleware).ok());

  auto backend = testing::make_native_backend();
  backend->start(host.chain);
  httplib::Client client("127.0.0.1", backend->port());
  for (const char* key : {"k-123", "k-123", "k-999"}) {
    auto res = client.Get("/x", httplib::Headers{{"X-Api-Key", key}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, std::string_view(key) == "k-123" ? 200 : 401);
  }
  ASSERT_TRUE(client.Get("/x"));

  testing::ManualHost manual;
  detail::RequestMessage req;
  detail::ResponseMessage res;
  req.method_string("GET");
  req.target("/api_key_lookup");
  req.version(11);
  res.version(11);
  Exchange ex(manual, Request(req), Response(res));
  ExchangeDriver(ex).reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  bool answered = false;
  for (const auto& endpoint : extension::admin_endpoints())
    if (ex.request().path().starts_with(endpoint.prefix) && endpoint.handle(ex, host))
      answered = true;
  ASSERT_TRUE(answered);
  EXPECT_EQ(ex.response().status(), 200);
  const auto body = nlohmann::json::parse(ex.response().body());
  ASSERT_EQ(body["middlewares"].size(), 1u);
  EXPECT_EQ(body["middlewares"][0]["route"], "api");
  EXPECT_EQ(body["middlewares"][0]["name"], "keys");
  EXPECT_EQ(body["middlewares"][0]["known"], 2);
  EXPECT_EQ(body["middlewares"][0]["unknown"], 1);
  EXPECT_EQ(body["middlewares"][0]["missing"], 1);

  bool scraped = false;
  for (const auto& family : host.services_.metrics->Collect())
    if (family.name == "sluice_api_key_lookup_total") scraped = family.metric.size() == 3;
  EXPECT_TRUE(scraped) << "three series (known, unknown, missing) in the host's registry";

  ConfigErrors bad("guide.yaml");
  Settings empty = bad.settings(YAML::Load("{}"), "routes[0].middlewares[0]");
  (void)(*factory)(spec, empty);
  bad.finish();
  EXPECT_FALSE(bad.empty()) << "no keys: a config error";
}

}  // namespace
}  // namespace sluice
