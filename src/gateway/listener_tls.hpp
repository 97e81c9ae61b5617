// The `tls:` map of a listener, read into a built TlsContext (server/tls/tls_context.hpp).
// Files are read at every load, so a reload (SIGHUP, POST /reload) picks up renewed
// certificates; a missing file or a key that does not match is an error at its position.
//
//   listen:
//     - address: 0.0.0.0:8443
//       tls: { cert_file: site.pem, key_file: site.key }
//   auto tls = read_listener_tls(listener.child("tls"));  // null after an error
#pragma once

#include <memory>

#include "server/tls/tls_context.hpp"
#include "sluice/settings.hpp"

namespace sluice::gateway {

std::shared_ptr<const server::TlsContext> read_listener_tls(const Settings& tls);

}  // namespace sluice::gateway
