// The access-log observer through a real Chain: one JSON line per request — early answers and
// exceptions included — that stays one parseable line whatever bytes the client sent.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "observe/access_log/access_log_line.hpp"
#include "observe/access_log/access_log_observer.hpp"
#include "sluice/chain.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"
#include "support/sluice_process.hpp"

namespace sluice::observe {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(AccessLogLine, Rfc3339UtcWithMilliseconds) {
  std::string out;
  // 2026-01-02T03:04:05.678Z
  append_rfc3339_millis(out, std::chrono::system_clock::time_point(1767323045678ms));
  EXPECT_EQ(out, "2026-01-02T03:04:05.678Z");
  out.clear();
  append_rfc3339_millis(out, std::chrono::system_clock::time_point(1767323045001ms));
  EXPECT_EQ(out, "2026-01-02T03:04:05.001Z");
}

class Limiter final : public Middleware {
 public:
  std::string_view name() const override { return "limiter"; }
  Decision pre_handle(Exchange& ex) override {
    if (ex.request().path() == "/limited") return ex.answer_error(429, "rate_limited", "slow");
    if (ex.request().path() == "/boom") throw std::runtime_error("boom");
    return Decision::next();
  }
};

class Ok final : public Handler {
 public:
  std::string_view kind() const override { return "ok"; }
  Decision handle(Exchange& ex) override { return ex.answer(200, "text/plain", "hello"); }
};

struct Fixture {
  Fixture() {
    writer = std::make_shared<AccessLogWriter>(AccessLogWriter::Options{.path = path});
    chain.set_observers({std::make_shared<AccessLogObserver>(writer, latencies)});
    EXPECT_TRUE(chain.use(std::make_shared<Limiter>()).ok());
  }
  void run(std::string_view method, std::string_view target,
           std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto& ex = host->exchange(method, target);
    for (auto& [k, v] : headers)
      ex.request().add_header(k, v);
    ex.context().set_request_id("rid-1");
    ex.context().set_client_ip("192.0.2.1");
    ExchangeDriver(ex).set_route(&info);
    auto lease = chain.acquire();
    ExchangeDriver(ex).run(*lease, handler, [] {});
    host->run_all();
  }
  std::vector<std::string> lines() {
    EXPECT_TRUE(writer->flush(5s));
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }

  testing::TempDir dir;
  std::string path = dir.file("access.log");
  std::shared_ptr<AccessLogWriter> writer;
  RouteLatencies latencies{16};
  Chain chain{"api"};
  RouteInfo info{"api"};
  Ok handler;
  std::shared_ptr<testing::ManualHost> host = std::make_shared<testing::ManualHost>();
};

TEST(AccessLogLine, UserAndTierOnlyWhenAnAuthenticationMiddlewareSetThem) {
  auto host = std::make_shared<testing::ManualHost>();
  auto& ex = host->exchange("GET", "/x");
  auto anonymous = json::parse(format_access_log_line(ex, 1ms, LatencyBucket::kP50));
  EXPECT_FALSE(anonymous.contains("user"));
  EXPECT_FALSE(anonymous.contains("user_tier"));
  ex.context().set_user("al\"ice");
  ex.context().set_tier("vip");
  auto line = json::parse(format_access_log_line(ex, 1ms, LatencyBucket::kP50));
  EXPECT_EQ(line["user"], "al\"ice");
  EXPECT_EQ(line["user_tier"], "vip");
}

TEST(AccessLogObserver, OneLinePerOutcomeWithTheDocumentedFields) {
  Fixture f;
  f.run("GET", "/ok?secret=1", {{"User-Agent", "curl/8.0"}});
  f.run("POST", "/limited");
  f.run("GET", "/boom");
  auto lines = f.lines();
  ASSERT_EQ(lines.size(), 3u);
  auto ok = json::parse(lines[0]);
  EXPECT_TRUE(std::regex_match(ok["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  EXPECT_EQ(ok["request_id"], "rid-1");
  EXPECT_EQ(ok["method"], "GET");
  EXPECT_EQ(ok["path"], "/ok");  // no query string: it may carry secrets
  EXPECT_EQ(ok["status_code"], 200);
  EXPECT_EQ(ok["client_ip"], "192.0.2.1");
  EXPECT_GE(ok["latency_ms"].get<double>(), 0);
  EXPECT_EQ(ok["latency_bucket"], "p50");  // the first sample of the route
  EXPECT_EQ(ok["bytes_in"], 0);
  EXPECT_EQ(ok["bytes_out"], 5);
  EXPECT_EQ(ok["user_agent"], "curl/8.0");
  EXPECT_EQ(ok["route"], "api");
  EXPECT_FALSE(ok.contains("answered_by"));
  EXPECT_FALSE(ok.contains("trace_id"));  // no tracing observer

  auto limited = json::parse(lines[1]);
  EXPECT_EQ(limited["status_code"], 429);
  EXPECT_EQ(limited["answered_by"], "limiter");
  EXPECT_EQ(limited["detail"], "rate_limited");
  auto boom = json::parse(lines[2]);
  EXPECT_EQ(boom["status_code"], 500);
  EXPECT_EQ(boom["detail"], "internal_error");
}

TEST(AccessLogObserver, HostileBytesNeverBreakALine) {
  Fixture f;
  const std::vector<std::string> hostile = {"\"quoted\"",
                                            "back\\slash",
                                            std::string("nul\0byte", 8),
                                            "ctl\x01\x1f\x7f",
                                            "crlf\r\n{\"injected\":1}",
                                            "bad-utf8\xff\xfe\xc3",
                                            "overlong\xc0\xaf",
                                            "tab\there",
                                            "surrogate\xed\xa0\x80",
                                            "ok-utf8-\xc3\xa9\xe2\x82\xac"};
  for (const auto& h : hostile) {
    f.run(h, "/p" + h, {{"User-Agent", h}});
  }
  auto lines = f.lines();
  ASSERT_EQ(lines.size(), hostile.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    json j;
    ASSERT_NO_THROW(j = json::parse(lines[i])) << lines[i];
    EXPECT_TRUE(j.is_object());
    for (char c : lines[i])
      EXPECT_GE(static_cast<unsigned char>(c), 0x20) << lines[i];
  }
  EXPECT_EQ(json::parse(lines[0])["user_agent"], "\"quoted\"");
  EXPECT_EQ(json::parse(lines[1])["path"], "/pback\\slash");
  EXPECT_EQ(json::parse(lines[4])["user_agent"], "crlf\r\n{\"injected\":1}");
  EXPECT_EQ(json::parse(lines[5])["user_agent"], "bad-utf8\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(json::parse(lines[9])["user_agent"], "ok-utf8-\xc3\xa9\xe2\x82\xac");
}

TEST(AccessLogObserver, LatencyBucketAgainstTheRoutesRecentDistribution) {
  LatencyEstimator est(std::chrono::seconds(10), std::chrono::nanoseconds(0));
  const auto now = std::chrono::steady_clock::now();
  for (int i = 1; i <= 1000; ++i)
    est.record(now, std::chrono::microseconds(i));
  EXPECT_EQ(to_string(est.classify(now, 100us)), "p50");
  EXPECT_EQ(to_string(est.classify(now, 900us)), "p95");
  EXPECT_EQ(to_string(est.classify(now, 980us)), "p99");
  EXPECT_EQ(to_string(est.classify(now, 5ms)), "slow");
}

}  // namespace
}  // namespace sluice::observe
