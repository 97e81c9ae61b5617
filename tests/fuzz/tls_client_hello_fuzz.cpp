// libFuzzer target: TLS ClientHello handling on a TLS listener. The real Session
// (session_harness.hpp) starts the server side of the handshake (OpenSSL through
// asio::ssl::stream) on bytes from the input, read in pieces whose size the first byte picks;
// the listener's TlsContext has three certificates, so the SNI callback (server/tls/) chooses
// among exact and wildcard names. The rest of the input is also looked up directly with
// TlsContext::context_for, as a server name. Checked besides "no crash, no ASan/UBSan report":
// the session ends after the client's EOF (a failed handshake closes it), and context_for
// answers a known name with a certificate and the empty name with none.
//
// Certificates are made once at start with the openssl command, in a temporary directory.
// OpenSSL itself is not instrumented: coverage guides the fuzzer through sluice's side only.
//
//   make fuzz-build && build-fuzz/tls_client_hello_fuzz tests/fuzz/corpus/tls_client_hello
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server/tls/tls_context.hpp"
#include "session_harness.hpp"

namespace {

using sluice::fuzz::check;
using sluice::server::TlsContext;

std::string g_dir;

void make_certificate(const std::string& stem, const std::string& names) {
  std::string san;
  for (std::size_t at = 0; at <= names.size();) {
    auto comma = names.find(',', at);
    if (comma == std::string::npos) comma = names.size();
    san += (san.empty() ? "DNS:" : ",DNS:") + names.substr(at, comma - at);
    at = comma + 1;
  }
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=" +
      stem + " -addext subjectAltName=" + san + " -keyout " + g_dir + "/" + stem + ".key -out " +
      g_dir + "/" + stem + ".pem >/dev/null 2>&1";
  check(std::system(cmd.c_str()) == 0, "openssl req (is the openssl command installed?)");
}

std::shared_ptr<const TlsContext> g_tls;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/sluice-tls-fuzz-XXXXXX";
  check(::mkdtemp(dir) != nullptr, "mkdtemp");
  g_dir = dir;
  make_certificate("a", "a.test,www.a.test");
  make_certificate("wild", "*.b.test");
  make_certificate("exact", "x.b.test");
  sluice::server::TlsSettings s;
  for (const char* stem : {"a", "wild", "exact"})
    s.certificates.push_back({g_dir + "/" + stem + ".pem", g_dir + "/" + stem + ".key"});
  sluice::server::TlsBuildError error;
  g_tls = TlsContext::build(s, error);
  check(g_tls != nullptr, "TlsContext::build");
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t piece = data[0] >= 192 ? size : (data[0] % 64) + 1;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  static sluice::fuzz::SessionHarness harness({}, sluice::server::ListenerOptions{.tls = g_tls},
                                              std::make_shared<sluice::fuzz::EchoDispatcher>());
  harness.run(bytes, piece);  // what the server sent is TLS records: not checked
  // The SNI lookup on its own, with a name from the input's tail (up to 255 bytes).
  const auto name = bytes.substr(bytes.size() - std::min<std::size_t>(bytes.size(), 255));
  g_tls->context_for(name);
  check(g_tls->context_for("a.test") != nullptr && g_tls->context_for("q.b.test") != nullptr,
        "known names have a certificate");
  check(g_tls->context_for("") == nullptr, "the empty name has none");
  return 0;
}
