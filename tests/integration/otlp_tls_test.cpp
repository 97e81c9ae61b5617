// The OTLP exporter over https:// through the real binary: a TLS test collector with a
// certificate the test makes; spans arrive when the collector's CA is configured, and none when
// it is not (another CA, or the system bundle that does not know the test CA), with the failure
// counted; a missing ca_file is a config error with its position.
#include <gtest/gtest.h>
#include <httplib.h>

#include <sstream>
#include <thread>

#include "support/otlp_collector.hpp"
#include "support/sluice_process.hpp"
#include "support/test_pki.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

double metric(int admin_port, const std::string& series) {
  httplib::Client admin("127.0.0.1", admin_port);
  auto r = admin.Get("/metrics");
  if (!r) return -1;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(series + " ") || line.starts_with(series + "{"))
      return std::stod(line.substr(line.rfind(' ') + 1));
  return 0;
}

std::string traced(const std::string& url, const std::string& tls) {
  return "tracing:\n  endpoint: " + url +
         "\n  sampler: always_on\n  batch: { schedule_delay_ms: 50, max_retries: 0 }\n" + tls +
         "routes: [ { name: echo, handler: { type: echo } } ]\n";
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

class OtlpTls : public ::testing::Test {
 protected:
  void SetUp() override { pki.issue("collector", "localhost"); }
  TestPki pki;
};

TEST_F(OtlpTls, SpansReachACollectorVerifiedByItsCa) {
  OtlpCollector collector(pki.file("collector.pem"), pki.file("collector.key"));
  SluiceProcess gw(traced(collector.url(), "  tls: { ca_file: " + pki.file("ca.pem") + " }\n"));
  httplib::Client c("127.0.0.1", gw.port());
  ASSERT_EQ(c.Get("/traced")->status, 200);
  EXPECT_TRUE(eventually([&] { return !collector.spans().empty(); })) << gw.log();
  EXPECT_TRUE(
      eventually([&] { return metric(gw.admin_port(), "sluice_otlp_spans_exported_total") >= 1; }));
}

TEST_F(OtlpTls, AnUntrustedCollectorGetsNothing) {
  OtlpCollector collector(pki.file("collector.pem"), pki.file("collector.key"));
  for (const std::string& tls : {"  tls: { ca_file: " + pki.file("other-ca.pem") + " }\n",
                                 std::string()}) {  // the system bundle
    SCOPED_TRACE(tls);
    SluiceProcess gw(traced(collector.url(), tls));
    httplib::Client c("127.0.0.1", gw.port());
    ASSERT_EQ(c.Get("/traced")->status, 200);
    EXPECT_TRUE(eventually([&] {
      return metric(gw.admin_port(), "sluice_otlp_export_failures_total") >= 1;
    })) << gw.log();
    EXPECT_TRUE(collector.spans().empty());
  }
}

TEST_F(OtlpTls, MissingCaFileIsAConfigErrorWithItsPosition) {
  const std::string path = pki.dir().write(
      "bad.yaml", traced("https://localhost:4318", "  tls: { ca_file: /nonexistent/ca.pem }\n"));
  auto out = run_sluice("check -c " + path);
  EXPECT_NE(out.status, 0);
  EXPECT_NE(
      out.output.find("bad.yaml:5:19: tracing.tls.ca_file: cannot read \"/nonexistent/ca.pem\""),
      std::string::npos)
      << out.output;
}

}  // namespace
}  // namespace sluice::testing
