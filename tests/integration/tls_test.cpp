// TLS termination through the real binary, with certificates the test makes with the openssl
// CLI: curl over https with the CA, SNI choosing between two certificates and a wrong name
// refused by the client, mTLS accepted and refused, session resumption, the handshake timeout,
// handshake errors counted by reason, a certificate rotated by SIGHUP, and config errors for a
// missing or mismatched key with their file:line:col.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <memory>
#include <sstream>
#include <thread>

#include "support/raw_client.hpp"
#include "support/sluice_process.hpp"
#include "support/test_pki.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

std::string tls_listener(const TestPki& pki, const std::string& extra = "") {
  return "listen:\n  - address: 127.0.0.1:0\n    tls:\n      certificates:\n"
         "        - { cert_file: " +
         pki.file("a.pem") + ", key_file: " + pki.file("a.key") +
         " }\n"
         "        - { cert_file: " +
         pki.file("b.pem") + ", key_file: " + pki.file("b.key") + " }\n" + extra + R"(routes:
  - name: echo
    handler: { type: echo }
)";
}

// curl to https://NAME:PORT/PATH resolved to loopback; -w prints the status last.
Shell curl(int port, const std::string& name, const std::string& args,
           const std::string& path = "/x") {
  const std::string p = std::to_string(port);
  return sh("curl -sS --max-time 5 -w '\\n%{http_code} %{http_version}' --resolve " + name + ":" +
            p + ":127.0.0.1 " + args + " https://" + name + ":" + p + path);
}

std::string scrape(const SluiceProcess& gw) {
  httplib::Client admin("127.0.0.1", gw.admin_port());
  auto r = admin.Get("/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

double sample(const std::string& metrics, const std::string& series) {
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  return -1;
}

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    pki.issue("a", "a.test");
    pki.issue("b", "*.b.test");
    pki.issue("client", "", "ca", "clientAuth");
    pki.issue("stranger", "", "other-ca", "clientAuth");
  }
  TestPki pki;
};

TEST_F(Tls, CurlOverHttpsWithSniChoosingTheCertificate) {
  SluiceProcess gw(tls_listener(pki));
  const std::string ca = "--cacert " + pki.file("ca.pem");
  auto a = curl(gw.port(), "a.test", ca + " -v");
  EXPECT_EQ(a.status, 0) << a.output;
  EXPECT_NE(a.output.find("\"path\":\"/x\""), std::string::npos) << a.output;
  EXPECT_NE(a.output.find("subject: CN=a.test"), std::string::npos) << a.output;
  EXPECT_NE(a.output.find("ALPN: server accepted http/1.1"), std::string::npos) << a.output;
  EXPECT_NE(a.output.find("200 1.1"), std::string::npos) << a.output;

  auto b = curl(gw.port(), "www.b.test", ca + " -v");
  EXPECT_EQ(b.status, 0) << b.output;
  EXPECT_NE(b.output.find("subject: CN=*.b.test"), std::string::npos) << b.output;

  // An unknown name gets the default certificate, which the client refuses for that name
  // (curl checks the name after the handshake: not a handshake error on the server).
  auto wrong = curl(gw.port(), "c.test", ca);
  EXPECT_EQ(wrong.status, 60) << wrong.output;
  // A client that does not trust the CA aborts the handshake with an alert.
  EXPECT_EQ(curl(gw.port(), "a.test", "").status, 60);
  // TLS 1.2 and 1.3 both work; older versions are refused.
  EXPECT_EQ(curl(gw.port(), "a.test", ca + " --tlsv1.2 --tls-max 1.2").status, 0);
  EXPECT_EQ(curl(gw.port(), "a.test", ca + " --tlsv1.3").status, 0);
  EXPECT_NE(curl(gw.port(), "a.test", ca + " --tlsv1.1 --tls-max 1.1").status, 0);
  // Plain HTTP on the TLS port is a handshake error, counted by reason.
  RawClient plain(gw.port());
  plain.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(plain.closed_by_peer());
  const auto m = scrape(gw);
  EXPECT_GE(sample(m, R"(sluice_tls_handshake_errors_total{reason="http_request"})"), 1) << m;
  EXPECT_GE(sample(m, R"(sluice_tls_handshake_errors_total{reason="unsupported_version"})"), 1)
      << m;
  EXPECT_GE(
      sample(m, R"(sluice_tls_handshake_errors_total{reason="certificate_rejected_by_client"})"), 1)
      << m;
}

TEST_F(Tls, ProxyHeaderThenHandshakeAndLargeBodiesWithContinue) {
  SluiceProcess gw(
      "listen:\n  - address: 127.0.0.1:0\n    proxy_protocol: true\n    tls:\n"
      "      cert_file: " +
      pki.file("a.pem") + "\n      key_file: " + pki.file("a.key") +
      "\nroutes: [ { name: echo, handler: { type: echo } } ]\n");
  const std::string body = pki.dir().write("body", std::string(40000, 'x'));
  // curl's --haproxy-protocol sends a v1 header before the ClientHello; the request then asks for
  // 100-continue, and the echoed 40 kB body is written past the one-record fast path.
  auto r = curl(gw.port(), "a.test",
                "--cacert " + pki.file("ca.pem") +
                    " --haproxy-protocol -H 'Expect: 100-continue' --data-binary @" + body + " -v");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("HTTP/1.1 100 Continue"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"client_ip\":\"127.0.0.1\""), std::string::npos) << r.output;
  // The echoed body whole (curl -v splits it in its log; exit 0 means the length was met).
  EXPECT_NE(r.output.find("< Content-Length: 403"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("200 1.1"), std::string::npos) << r.output;
}

// Python's ssl module as a second client: SNI, ALPN, and a clean end of stream (close_notify)
// after `Connection: close`: with suppress_ragged_eofs=False Python raises SSLEOFError on a TCP
// close without it.
TEST_F(Tls, PythonSslClientSeesSniAlpnAndCloseNotify) {
  SluiceProcess gw(tls_listener(pki));
  const std::string script = pki.dir().write("client.py", R"(import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", int(sys.argv[2]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="www.b.test", suppress_ragged_eofs=False) as s:
        s.sendall(b"GET /py HTTP/1.1\r\nHost: www.b.test\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        print(s.version(), s.selected_alpn_protocol(), dict(x[0] for x in s.getpeercert()["subject"])["commonName"])
        print(data.decode())
)");
  auto r = sh("python3 " + script + " " + pki.file("ca.pem") + " " + std::to_string(gw.port()));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("TLSv1.3 http/1.1 *.b.test"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("HTTP/1.1 200 OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"path\":\"/py\""), std::string::npos) << r.output;
}

TEST_F(Tls, KeepAliveAndSessionResumption) {
  SluiceProcess gw(tls_listener(pki));
  const std::string p = std::to_string(gw.port());
  // Two requests on one connection.
  auto two = sh("curl -sS --max-time 5 --cacert " + pki.file("ca.pem") + " --resolve a.test:" + p +
                ":127.0.0.1 https://a.test:" + p + "/1 https://a.test:" + p + "/2 -v");
  EXPECT_EQ(two.status, 0) << two.output;
  EXPECT_NE(two.output.find("Re-using existing connection"), std::string::npos) << two.output;
  // A second connection resumes the first one's session (TLS 1.2 session ids / tickets, 1.3
  // tickets).
  for (const char* version_flag : {"-tls1_2", "-tls1_3"}) {
    const std::string version = version_flag;
    const std::string sess = pki.file("sess" + version);
    const std::string s_client = "openssl s_client -connect 127.0.0.1:" + p +
                                 " -servername a.test -CAfile " + pki.file("ca.pem") + " " +
                                 version;
    auto first = sh("printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n' | " +
                    s_client + " -ign_eof -sess_out " + sess);
    ASSERT_EQ(first.status, 0) << first.output;
    auto second = sh("printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n' | " +
                     s_client + " -ign_eof -sess_in " + sess);
    EXPECT_NE(second.output.find("Reused, "), std::string::npos) << version << second.output;
  }
}

TEST_F(Tls, ClientCertificatesAcceptedAndRefused) {
  SluiceProcess gw(tls_listener(pki, "      client_ca_file: " + pki.file("ca.pem") + "\n"));
  const std::string ca = "--cacert " + pki.file("ca.pem");
  auto ok = curl(gw.port(), "a.test",
                 ca + " --cert " + pki.file("client.pem") + " --key " + pki.file("client.key"));
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("200 1.1"), std::string::npos) << ok.output;
  auto none = curl(gw.port(), "a.test", ca);
  EXPECT_NE(none.status, 0) << none.output;
  auto stranger =
      curl(gw.port(), "a.test",
           ca + " --cert " + pki.file("stranger.pem") + " --key " + pki.file("stranger.key"));
  EXPECT_NE(stranger.status, 0) << stranger.output;
  // The gateway counts a failed handshake in its completion handler, after it wrote the alert
  // that ended curl: the scrape may come first (it did under ThreadSanitizer), so it is retried.
  const std::string no_cert =
      R"(sluice_tls_handshake_errors_total{reason="no_client_certificate"})";
  const std::string bad_cert =
      R"(sluice_tls_handshake_errors_total{reason="bad_client_certificate"})";
  std::string m = scrape(gw);
  for (int i = 0; i < 100 && (sample(m, no_cert) < 1 || sample(m, bad_cert) < 1); ++i) {
    std::this_thread::sleep_for(50ms);
    m = scrape(gw);
  }
  EXPECT_GE(sample(m, no_cert), 1) << m;
  EXPECT_GE(sample(m, bad_cert), 1) << m;
}

TEST_F(Tls, HandshakeTimeoutClosesASilentConnection) {
  SluiceProcess gw(tls_listener(pki, "      handshake_timeout_ms: 300\n"));
  RawClient silent(gw.port());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.closed_by_peer(3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_GE(sample(scrape(gw), R"(sluice_tls_handshake_errors_total{reason="timeout"})"), 1);
}

TEST_F(Tls, SighupReloadsRenewedCertificates) {
  SluiceProcess gw(tls_listener(pki));
  const std::string ca = "--cacert " + pki.file("ca.pem");
  auto before = curl(gw.port(), "a.test", ca + " -v");
  ASSERT_EQ(before.status, 0) << before.output;
  EXPECT_NE(before.output.find("subject: CN=a.test"), std::string::npos);
  // The renewed certificate names one more host; the files are replaced in place.
  pki.issue("a", "a.test,DNS:new.a.test");
  ASSERT_EQ(::kill(gw.pid(), SIGHUP), 0);
  bool renewed = false;
  for (int i = 0; i < 100 && !renewed; ++i) {
    renewed = curl(gw.port(), "new.a.test", ca).status == 0;
    if (!renewed) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(renewed) << gw.log();
}

TEST_F(Tls, MissingOrMismatchedKeyIsAConfigErrorWithItsPosition) {
  const std::string path =
      pki.dir().write("bad.yaml",
                      "listen:\n  - address: 127.0.0.1:0\n    tls:\n"
                      "      cert_file: " +
                          pki.file("a.pem") +
                          "\n"
                          "      key_file: " +
                          pki.file("b.key") +
                          "\n"
                          "routes: [ { name: a, handler: { type: echo } } ]\n");
  auto mismatch = run_sluice("check -c " + path);
  EXPECT_NE(mismatch.status, 0);
  EXPECT_NE(mismatch.output.find("bad.yaml:5:17: listen[0].tls.key_file: the key"),
            std::string::npos)
      << mismatch.output;
  EXPECT_NE(mismatch.output.find("does not match the certificate"), std::string::npos)
      << mismatch.output;
  const std::string missing =
      pki.dir().write("missing.yaml",
                      "listen:\n  - address: 127.0.0.1:0\n    tls:\n      certificates:\n"
                      "        - { cert_file: " +
                          pki.file("a.pem") +
                          ", key_file: /nonexistent.key }\n"
                          "routes: [ { name: a, handler: { type: echo } } ]\n");
  auto out = run_sluice("check -c " + missing);
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.output.find("missing.yaml:5:"), std::string::npos) << out.output;
  EXPECT_NE(
      out.output.find("listen[0].tls.certificates[0].key_file: cannot read \"/nonexistent.key\""),
      std::string::npos)
      << out.output;
}

// Steady HTTPS load from Python (threads, keep-alive connections of 20 requests each, new
// connections all along) while the certificate files are replaced in place: the file watch
// reloads them without SIGHUP, new connections get the new certificate, and not one request
// fails (open connections keep the old one; a half-written pair is refused and retried).
TEST_F(Tls, CertificateFilesRotatedUnderLoadWithoutAFailedRequest) {
  SluiceProcess gw(tls_listener(pki));
  const std::string script =
      pki.dir().write("load.py", R"(import http.client, socket, ssl, sys, threading, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
port, seconds = int(sys.argv[2]), float(sys.argv[3])
ok, failed, errors = [0], [0], []
lock = threading.Lock()
class Conn(http.client.HTTPSConnection):  # a.test, resolved to loopback
    def connect(self):
        raw = socket.create_connection(("127.0.0.1", port), 5)
        self.sock = ctx.wrap_socket(raw, server_hostname="a.test")
def worker():
    end = time.time() + seconds
    while time.time() < end:
        c = Conn("a.test", port, context=ctx, timeout=5)
        try:
            for _ in range(20):
                c.request("GET", "/load")
                r = c.getresponse()
                r.read()
                with lock:
                    if r.status == 200: ok[0] += 1
                    else: failed[0] += 1
        except Exception as e:
            with lock:
                failed[0] += 1
                errors.append(repr(e))
        finally:
            c.close()
threads = [threading.Thread(target=worker) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("ok", ok[0], "failed", failed[0], errors[:3])
)");
  Shell load;
  std::thread client([&] {
    load =
        sh("python3 " + script + " " + pki.file("ca.pem") + " " + std::to_string(gw.port()) + " 4");
  });
  std::this_thread::sleep_for(1s);
  pki.issue("a", "a.test,DNS:new.a.test");  // key, then certificate, written in place
  bool renewed = false;
  for (int i = 0; i < 60 && !renewed; ++i) {
    renewed = curl(gw.port(), "new.a.test", "--cacert " + pki.file("ca.pem")).status == 0;
    if (!renewed) std::this_thread::sleep_for(50ms);
  }
  client.join();
  EXPECT_TRUE(renewed) << gw.log();
  EXPECT_EQ(load.status, 0) << load.output;
  EXPECT_NE(load.output.find(" failed 0 "), std::string::npos) << load.output;
  EXPECT_EQ(load.output.find("ok 0 "), std::string::npos) << load.output;
  EXPECT_NE(gw.log().find("reload (certificate file change): config"), std::string::npos)
      << gw.log();
}

// An expired certificate is served (as nginx and Envoy do: refusing the config would take the
// other certificates down with it) with a warning at every load; clients refuse it.
TEST_F(Tls, ExpiredCertificateIsServedWithAWarning) {
  pki.issue_expired("old", "old.test");
  SluiceProcess gw("listen:\n  - address: 127.0.0.1:0\n    tls:\n      cert_file: " +
                   pki.file("old.pem") + "\n      key_file: " + pki.file("old.key") +
                   "\nroutes: [ { name: echo, handler: { type: echo } } ]\n");
  EXPECT_NE(gw.log().find("listen[0].tls: the certificate \"" + pki.file("old.pem") +
                          "\" expired on Feb  1 00:00:00 2020 GMT"),
            std::string::npos)
      << gw.log();
  auto refused = curl(gw.port(), "old.test", "--cacert " + pki.file("ca.pem"));
  EXPECT_EQ(refused.status, 60) << refused.output;
  EXPECT_NE(refused.output.find("expired"), std::string::npos) << refused.output;
  auto insecure = curl(gw.port(), "old.test", "-k");
  EXPECT_EQ(insecure.status, 0) << insecure.output;
}

// mTLS identity through the proxy: with forward_client_cert the upstream gets the verified
// certificate's subject and SANs; a client's own X-Client-Cert-Subject never passes; the
// request over TLS is X-Forwarded-Proto: https and Forwarded: ...;proto=https.
TEST_F(Tls, ClientCertificateIdentityForwardedUpstream) {
  pki.issue("svc", "svc.client.test", "ca", "clientAuth");
  SluiceProcess upstream("workers: 1\nroutes: [ { name: echo, handler: { type: echo } } ]\n");
  auto gateway = [&](const std::string& options) {
    return std::make_unique<SluiceProcess>(
        "listen:\n  - address: 127.0.0.1:0\n    tls:\n      cert_file: " + pki.file("a.pem") +
        "\n      key_file: " + pki.file("a.key") + "\n      client_ca_file: " + pki.file("ca.pem") +
        "\n      verify_client: optional\nupstreams:\n  echo: { endpoints: "
        "[\"127.0.0.1:" +
        std::to_string(upstream.port()) +
        "\"] }\nroutes: [ { name: p, handler: { type: proxy, cluster: echo" + options + " } } ]\n");
  };
  const std::string client_cert =
      " --cert " + pki.file("svc.pem") + " --key " + pki.file("svc.key");
  const std::string forged = " -H 'X-Client-Cert-Subject: CN=admin'";
  auto on = gateway(", forward_client_cert: true, forwarded: true");
  auto with = curl(on->port(), "a.test", "--cacert " + pki.file("ca.pem") + client_cert + forged);
  EXPECT_EQ(with.status, 0) << with.output;
  EXPECT_NE(with.output.find(R"("x-client-cert-subject":["CN=svc.client.test"])"),
            std::string::npos)
      << with.output;
  EXPECT_NE(with.output.find(R"("x-client-cert-san":["DNS:svc.client.test"])"), std::string::npos)
      << with.output;
  EXPECT_EQ(with.output.find("CN=admin"), std::string::npos) << with.output;
  EXPECT_NE(with.output.find(R"("x-forwarded-proto":["https"])"), std::string::npos) << with.output;
  EXPECT_NE(with.output.find(R"("forwarded":["for=127.0.0.1;proto=https;host=\"a.test:)"),
            std::string::npos)
      << with.output;
  // No certificate (verify_client: optional): nothing to forward, and the forged one is dropped.
  auto without = curl(on->port(), "a.test", "--cacert " + pki.file("ca.pem") + forged);
  EXPECT_EQ(without.output.find("x-client-cert"), std::string::npos) << without.output;
  // Off by default: not even the verified certificate goes upstream.
  auto off = gateway("");
  auto quiet = curl(off->port(), "a.test", "--cacert " + pki.file("ca.pem") + client_cert + forged);
  EXPECT_EQ(quiet.status, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("x-client-cert"), std::string::npos) << quiet.output;
}

}  // namespace
}  // namespace sluice::testing
