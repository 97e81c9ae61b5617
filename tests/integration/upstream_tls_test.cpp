// TLS to upstreams through the real binary: the upstream is a second sluice with a TLS listener
// (echo handler) and certificates the test makes with the openssl CLI. A trusted certificate
// answers 200 through the proxy; an unknown CA, a wrong name and an expired certificate answer
// 502 with the reason in the detail and in sluice_upstream_tls_handshake_errors_total; an
// upstream requiring a client certificate works with one and fails without; many requests over
// one pooled connection cost one handshake, counted on the upstream's side; a second connection
// resumes the first one's session; health checks speak TLS; bad files are config errors with
// their file:line:col.
#include <gtest/gtest.h>
#include <httplib.h>

#include <sstream>
#include <thread>

#include "support/sluice_process.hpp"
#include "support/test_pki.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

std::string scrape(int admin_port) {
  httplib::Client admin("127.0.0.1", admin_port);
  auto r = admin.Get("/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

double sample(const std::string& metrics, const std::string& series) {
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  return 0;
}

class UpstreamTls : public ::testing::Test {
 protected:
  void SetUp() override {
    pki.issue("up", "localhost,DNS:a.test");
    pki.issue("stranger", "localhost", "other-ca");
    pki.issue("client", "", "ca", "clientAuth");
  }

  // A TLS upstream (one worker, echo) serving `cert`; `extra` goes under its `tls:`.
  std::unique_ptr<SluiceProcess> upstream(const std::string& cert, const std::string& extra = "") {
    return std::make_unique<SluiceProcess>(
        "workers: 1\nlisten:\n  - address: 127.0.0.1:0\n    tls:\n      cert_file: " +
        pki.file(cert + ".pem") + "\n      key_file: " + pki.file(cert + ".key") + "\n" + extra +
        "routes: [ { name: echo, handler: { type: echo } } ]\n");
  }

  // A proxy with one cluster `secure` to localhost:`port` over TLS (`tls` is the map's body).
  std::unique_ptr<SluiceProcess> proxy(int port, const std::string& tls,
                                       const std::string& cluster_extra = "") {
    return std::make_unique<SluiceProcess>(
        "workers: 1\nupstreams:\n  secure:\n    endpoints: [\"localhost:" + std::to_string(port) +
        "\"]\n    retries: { max: 0 }\n" + cluster_extra + "    tls: { " + tls +
        " }\nroutes: [ { name: p, handler: { type: proxy, cluster: secure } } ]\n");
  }

  std::string ca() const { return "ca_file: " + pki.file("ca.pem"); }
  TestPki pki;
};

TEST_F(UpstreamTls, TrustedCertificateAnswersThroughTheProxy) {
  auto up = upstream("up");
  auto gw = proxy(up->port(), ca());
  httplib::Client c("127.0.0.1", gw->port());
  auto r = c.Get("/hello?x=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body << gw->log();
  EXPECT_NE(r->body.find("\"path\":\"/hello\""), std::string::npos) << r->body;
  // A POST with a body goes the same way.
  auto p = c.Post("/post", std::string(100'000, 'y'), "text/plain");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 200) << p->body;
}

// A fallback of kind `upstream` (and so a hedge) to a `tls:` cluster speaks TLS too: it sent
// plain HTTP before (a 502 from the fallback's failure, in 6 ms). Three calls: the first
// handshakes, the next ones reuse the pooled TLS connection.
TEST_F(UpstreamTls, AFallbackToATlsClusterSpeaksTls) {
  auto up = upstream("up");
  SluiceProcess gw("workers: 1\nupstreams:\n  secure:\n    endpoints: [\"localhost:" +
                   std::to_string(up->port()) + "\"]\n    tls: { " + ca() +
                   " }\nroutes:\n  - name: f\n    middlewares:\n      - type: fallback\n"
                   "        fallbacks: [ { name: tls_shadow, kind: upstream, cluster: secure,\n"
                   "                       when: { status: [5xx] }, timeout_ms: 3000 } ]\n"
                   "    handler: { type: respond, status: 502 }\n");
  httplib::Client c("127.0.0.1", gw.port());
  for (int i = 0; i < 3; ++i) {
    auto r = c.Get("/from-fallback");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body << gw.log();
    EXPECT_EQ(r->get_header_value("X-Sluice-Fallback"), "tls_shadow");
    EXPECT_NE(r->body.find("\"path\":\"/from-fallback\""), std::string::npos) << r->body;
  }
}

TEST_F(UpstreamTls, UnknownCaWrongNameAndExpiredCertificateAre502WithTheReason) {
  struct Case {
    std::string cert, tls, reason, detail;
  };
  pki.issue_expired("old", "localhost");
  const std::vector<Case> cases = {
      {"stranger", ca(), "untrusted_certificate", "unable to get local issuer certificate"},
      {"up", ca() + ", sni: b.test", "name_mismatch", "hostname mismatch"},
      {"old", ca(), "expired_certificate", "certificate has expired"},
      // No ca_file: the system bundle, which does not know the test CA.
      {"up", "", "untrusted_certificate", "unable to get local issuer certificate"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.cert + " / " + k.tls);
    auto up = upstream(k.cert);
    auto gw = proxy(up->port(), k.tls);
    httplib::Client c("127.0.0.1", gw->port());
    auto r = c.Get("/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
    EXPECT_NE(r->body.find("upstream_tls"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("TLS handshake failed (" + k.reason), std::string::npos) << r->body;
    EXPECT_NE(r->body.find(k.detail), std::string::npos) << r->body;
    EXPECT_EQ(sample(scrape(gw->admin_port()),
                     "sluice_upstream_tls_handshake_errors_total{cluster=\"secure\",reason=\"" +
                         k.reason + "\"}"),
              1);
  }
}

TEST_F(UpstreamTls, ClientCertificateForAnUpstreamThatRequiresOne) {
  auto up = upstream("up", "      client_ca_file: " + pki.file("ca.pem") + "\n");
  auto with = proxy(up->port(), ca() + ", cert_file: " + pki.file("client.pem") +
                                    ", key_file: " + pki.file("client.key"));
  httplib::Client c("127.0.0.1", with->port());
  auto ok = c.Get("/x");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;

  auto without = proxy(up->port(), ca());
  httplib::Client d("127.0.0.1", without->port());
  auto refused = d.Get("/x");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 502);
  // TLS 1.3: the upstream's alert arrives after the client's side of the handshake, on the read.
  EXPECT_NE(refused->body.find("upstream_tls"), std::string::npos) << refused->body;
  EXPECT_NE(refused->body.find("certificate required"), std::string::npos) << refused->body;
  EXPECT_GE(sample(scrape(up->admin_port()),
                   "sluice_tls_handshake_errors_total{reason=\"no_client_certificate\"}"),
            1);
}

TEST_F(UpstreamTls, PooledConnectionsCostOneHandshakeAndNewOnesResume) {
  auto up = upstream("up");
  auto gw = proxy(up->port(), ca());
  httplib::Client c("127.0.0.1", gw->port());
  for (int i = 0; i < 50; ++i) {
    auto r = c.Get("/n");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  auto upstream_side = scrape(up->admin_port());
  EXPECT_EQ(sample(upstream_side, "sluice_tls_handshakes_total{resumed=\"false\"}"), 1)
      << upstream_side;
  EXPECT_EQ(sample(upstream_side, "sluice_tls_handshakes_total{resumed=\"true\"}"), 0);
  auto proxy_side = scrape(gw->admin_port());
  EXPECT_EQ(sample(proxy_side,
                   "sluice_upstream_tls_handshakes_total{cluster=\"secure\",resumed=\"false\"}"),
            1)
      << proxy_side;

  // Several at once need several connections; the new ones resume the pooled one's session.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      httplib::Client k("127.0.0.1", gw->port());
      for (int i = 0; i < 20; ++i)
        if (auto r = k.Get("/slow"); r && r->status == 200) ++ok;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ok.load(), 80);
  upstream_side = scrape(up->admin_port());
  const double full = sample(upstream_side, "sluice_tls_handshakes_total{resumed=\"false\"}");
  const double resumed = sample(upstream_side, "sluice_tls_handshakes_total{resumed=\"true\"}");
  // Known weakness (issue 14 note): in about 2 runs of 5 one of the concurrent new connections
  // makes a full handshake instead of resuming (both ends TLS 1.3, tickets); cause not found.
  // What is asserted: no handshake per request, and new connections do resume.
  EXPECT_LE(full, 2) << upstream_side;
  EXPECT_GE(resumed, 1) << upstream_side;
  EXPECT_LE(full - 1 + resumed, 4) << upstream_side;  // at most one per new connection
  proxy_side = scrape(gw->admin_port());
  EXPECT_EQ(sample(proxy_side,
                   "sluice_upstream_tls_handshakes_total{cluster=\"secure\",resumed=\"true\"}"),
            resumed);
}

// TLS 1.3 tickets (OpenSSL's default for both ends): each new connection offers the last ticket
// the endpoint gave.
TEST_F(UpstreamTls, WithoutPoolingEveryNewConnectionResumesTheLastSession) {
  auto up = upstream("up");
  auto gw = proxy(up->port(), ca(), "    pool: { max_per_endpoint: 0 }\n");
  httplib::Client c("127.0.0.1", gw->port());
  for (int i = 0; i < 10; ++i) {
    auto r = c.Get("/n");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  const auto m = scrape(gw->admin_port());
  EXPECT_EQ(sample(m, "sluice_upstream_tls_handshakes_total{cluster=\"secure\",resumed=\"false\"}"),
            1)
      << m;
  EXPECT_EQ(sample(m, "sluice_upstream_tls_handshakes_total{cluster=\"secure\",resumed=\"true\"}"),
            9)
      << m;
  const auto u = scrape(up->admin_port());
  EXPECT_EQ(sample(u, "sluice_tls_handshakes_total{resumed=\"true\"}"), 9) << u;
  // session_reuse: false: a full handshake every time.
  auto full =
      proxy(up->port(), ca() + ", session_reuse: false", "    pool: { max_per_endpoint: 0 }\n");
  httplib::Client f("127.0.0.1", full->port());
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(f.Get("/n")->status, 200);
  EXPECT_EQ(sample(scrape(full->admin_port()),
                   "sluice_upstream_tls_handshakes_total{cluster=\"secure\",resumed=\"false\"}"),
            3);
}

TEST_F(UpstreamTls, HealthChecksSpeakTls) {
  auto up = upstream("up");
  // Checked through the CA: passes. With a wrong name the check fails, the endpoint goes out
  // and the (single-endpoint) cluster's panic rule still routes to it — the answer is the
  // handshake's 502, and the log says why the check failed.
  auto gw = proxy(up->port(), ca(),
                  "    health_check: { path: /healthz, interval_ms: 100, timeout_ms: 1000 }\n");
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(gw->log().find("fails its health check"), std::string::npos) << gw->log();
  // The upstream saw the checks as TLS requests (one connection each: Connection: close).
  EXPECT_GE(sample(scrape(up->admin_port()), "sluice_tls_handshakes_total{resumed=\"true\"}") +
                sample(scrape(up->admin_port()), "sluice_tls_handshakes_total{resumed=\"false\"}"),
            3);

  auto wrong = proxy(up->port(), ca() + ", sni: wrong.test",
                     "    health_check: { path: /healthz, interval_ms: 100, timeout_ms: 1000 }\n");
  bool failed = false;
  for (int i = 0; i < 50 && !failed; ++i) {
    failed = wrong->log().find("fails its health check") != std::string::npos;
    if (!failed) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(failed) << wrong->log();
}

TEST_F(UpstreamTls, BadFilesAreConfigErrorsWithTheirPosition) {
  auto check = [&](const std::string& tls) {
    const std::string path = pki.dir().write(
        "bad.yaml", "upstreams:\n  secure:\n    endpoints: [\"localhost:9\"]\n    tls:\n" + tls +
                        "routes: [ { name: p, handler: { type: proxy, cluster: secure } } ]\n");
    return run_sluice("check -c " + path);
  };
  auto missing_ca = check("      ca_file: /nonexistent/ca.pem\n");
  EXPECT_NE(missing_ca.status, 0);
  EXPECT_NE(missing_ca.output.find(
                "bad.yaml:5:16: upstreams.secure.tls.ca_file: cannot read \"/nonexistent/ca.pem\""),
            std::string::npos)
      << missing_ca.output;

  auto not_a_ca = check("      ca_file: " + pki.file("up.key") + "\n");
  EXPECT_NE(not_a_ca.output.find("upstreams.secure.tls.ca_file: \"" + pki.file("up.key") +
                                 "\" holds no CA certificate"),
            std::string::npos)
      << not_a_ca.output;

  auto unreadable = check("      ca_file: " + pki.file("ca.pem") +
                          "\n      cert_file: " + pki.file("missing.pem") +
                          "\n      key_file: " + pki.file("client.key") + "\n");
  EXPECT_NE(unreadable.output.find("bad.yaml:6:18: upstreams.secure.tls.cert_file: cannot read"),
            std::string::npos)
      << unreadable.output;

  auto mismatch = check("      ca_file: " + pki.file("ca.pem") + "\n      cert_file: " +
                        pki.file("client.pem") + "\n      key_file: " + pki.file("up.key") + "\n");
  EXPECT_NE(mismatch.output.find("bad.yaml:7:17: upstreams.secure.tls.key_file: the key"),
            std::string::npos)
      << mismatch.output;

  auto half = check("      cert_file: " + pki.file("client.pem") + "\n");
  EXPECT_NE(half.output.find("client certificate needs both cert_file and key_file"),
            std::string::npos)
      << half.output;
}

}  // namespace
}  // namespace sluice::testing
