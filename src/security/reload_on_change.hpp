// ReloadOnChange — files read at a config load whose change reloads the config by itself, as
// SIGHUP would. Kept in the loaded config's extras; the gateway checks their stamps once a
// second beside the listeners' certificates (Gateway::tls_files_changed). The upstream clusters
// list their TLS files here (CA bundle, client certificate and key), so renewed ones are used by
// new connections without a reload being asked for.
//
//   config.extras->get_or_emplace<security::ReloadOnChange>().paths.push_back(ca_file);
#pragma once

#include <string>
#include <vector>

namespace sluice::security {

struct ReloadOnChange {
  std::vector<std::string> paths;
};

}  // namespace sluice::security
