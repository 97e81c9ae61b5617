#include "middleware/request_id/request_id.hpp"
#include "sluice/registry.hpp"

namespace sluice::middleware {
namespace {
const MiddlewareRegistrar registrar("request_id", [](const MiddlewareSpec& spec, Settings& s) {
  auto header = s.string("header", "X-Request-Id");
  return std::make_shared<RequestIdMiddleware>(spec.name, header,
                                               s.boolean("trust_incoming", true));
});
}  // namespace
}  // namespace sluice::middleware
