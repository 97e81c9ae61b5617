// The CA bundle a TLS client verifies against when its config names none: Debian's
// ca-certificates file (the upstream clusters' `tls:` and the OTLP exporter's https://).
#pragma once

namespace sluice::net {

inline constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

}  // namespace sluice::net
