// TestPki — a CA, certificates it signs for DNS names, and client certificates, made with the
// openssl CLI in a temporary directory (the TLS tests, listener and upstream side); sh() runs a
// shell command and returns its exit status and output.
//
//   TestPki pki;
//   pki.issue("a", "a.test");                        // a.pem / a.key for DNS:a.test, by "ca"
//   pki.issue("client", "", "ca", "clientAuth");     // a client certificate
//   pki.issue_expired("old", "a.test");              // valid in 2020 only
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "support/sluice_process.hpp"

namespace sluice::testing {

struct Shell {
  int status = -1;
  std::string output;
};

inline Shell sh(const std::string& command) {
  Shell r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.output.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class TestPki {
 public:
  TestPki() {
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=sluice-test-ca -keyout " +
        dir_.file("ca.key") + " -out " + dir_.file("ca.pem"));
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=other-ca -keyout " +
        dir_.file("other-ca.key") + " -out " + dir_.file("other-ca.pem"));
  }
  const TempDir& dir() const { return dir_; }
  std::string file(const std::string& name) const { return dir_.file(name); }

  // `name`.pem and `name`.key, for `dns` (a subjectAltName), signed by `ca` ("ca" or "other-ca").
  // `dns` may list several names ("a.test,DNS:b.test"); the first is also the common name.
  void issue(const std::string& name, const std::string& dns, const std::string& ca = "ca",
             const std::string& usage = "serverAuth") {
    const std::string ext = extensions(name, dns, usage);
    request(name, dns);
    run("openssl x509 -req -days 2 -in " + file(name + ".csr") + " -CA " + file(ca + ".pem") +
        " -CAkey " + file(ca + ".key") + " -CAcreateserial -extfile " + ext + " -out " +
        file(name + ".pem"));
  }

  // As issue(), signed by "ca", but valid only in January 2020 (`openssl ca` sets the dates).
  void issue_expired(const std::string& name, const std::string& dns) {
    const std::string ext = extensions(name, dns, "serverAuth");
    request(name, dns);
    dir_.write("index.txt", "");
    dir_.write("ca.cnf", "[ca]\ndefault_ca=test\n[test]\ndatabase=" + file("index.txt") +
                             "\nnew_certs_dir=" + dir_.path() + "\nserial=" + file("ca.serial") +
                             "\ndefault_md=sha256\npolicy=any\nunique_subject=no\n"
                             "[any]\ncommonName=supplied\n");
    dir_.write("ca.serial", "1000\n");
    run("openssl ca -batch -config " + file("ca.cnf") + " -cert " + file("ca.pem") + " -keyfile " +
        file("ca.key") + " -startdate 20200101000000Z -enddate 20200201000000Z -extfile " + ext +
        " -notext -in " + file(name + ".csr") + " -out " + file(name + ".pem"));
  }

 private:
  std::string extensions(const std::string& name, const std::string& dns,
                         const std::string& usage) {
    return dir_.write(name + ".ext", (dns.empty() ? "" : "subjectAltName=DNS:" + dns + "\n") +
                                         "extendedKeyUsage=" + usage + "\n");
  }
  void request(const std::string& name, const std::string& dns) {
    const std::string cn = dns.empty() ? name : dns.substr(0, dns.find(','));
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + cn +
        " -keyout " + file(name + ".key") + " -out " + file(name + ".csr"));
  }
  void run(const std::string& command) {
    auto r = sh(command);
    ASSERT_EQ(r.status, 0) << command << "\n" << r.output;
  }
  TempDir dir_;
};

}  // namespace sluice::testing
