// OpenSSL errors as text, and whether a certificate or key file can be read: shared by the
// listeners' TLS (server/tls) and the upstream clusters' (upstream/tls).
//
//   if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1) report(path + ": " + openssl_error());
//   if (!readable_file(path)) report(path + ": cannot be read");
#pragma once

#include <openssl/err.h>

#include <fstream>
#include <string>

namespace sluice::net {

// The most recent OpenSSL error as text, the queue emptied (it is per thread and sticky).
inline std::string openssl_error() {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error())
    last = e;
  if (last == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(last, text, sizeof text);
  return text;
}

inline bool readable_file(const std::string& path) {
  return std::ifstream(path).good();
}

}  // namespace sluice::net
