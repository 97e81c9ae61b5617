#include "sluice/extension/admin_endpoint.hpp"

#include <mutex>

namespace sluice::extension {
namespace {

struct Endpoints {
  std::mutex mutex;
  std::vector<AdminEndpoint> list;
};
Endpoints& endpoints() {
  static Endpoints e;
  return e;
}

}  // namespace

void register_admin_endpoint(AdminEndpoint endpoint) {
  std::lock_guard lock(endpoints().mutex);
  endpoints().list.push_back(std::move(endpoint));
}

std::vector<AdminEndpoint> admin_endpoints() {
  std::lock_guard lock(endpoints().mutex);
  return endpoints().list;
}

}  // namespace sluice::extension
