// Runs a sluice Chain with one middleware through the installed library's public headers:
// the cpp-httplib adapter drives it without starting a server.
#include <httplib.h>

#include <iostream>
#include <sluice/adapters/httplib.hpp>
#include <sluice/chain.hpp>

namespace {
class Greeter final : public sluice::Middleware {
 public:
  std::string_view name() const override { return "greeter"; }
  sluice::Decision pre_handle(sluice::Exchange& ex) override {
    if (ex.request().path() == "/blocked") return ex.answer(403, "text/plain", "blocked\n");
    return sluice::Decision::next();
  }
  void post_handle(sluice::Exchange& ex, std::chrono::nanoseconds) override {
    ex.response().set_header("X-Greeter", "hello");
  }
};
}  // namespace

int main() {
  auto chain = std::make_shared<sluice::Chain>("consumer");
  if (!chain->use(std::make_shared<Greeter>()).ok()) return 1;
  sluice::httplib_adapter::ChainRunner runner(chain);
  auto handler = runner.wrap([](const httplib::Request&, httplib::Response& res) {
    res.set_content("handled\n", "text/plain");
  });
  for (const char* path : {"/ok", "/blocked"}) {
    httplib::Request req;
    req.method = "GET";
    req.path = req.target = path;
    req.version = "HTTP/1.1";
    httplib::Response res;
    handler(req, res);
    std::cout << path << " " << res.status << " " << res.get_header_value("X-Greeter") << " "
              << res.body;
  }
  return 0;
}
