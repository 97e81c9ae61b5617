// Registers the built-in handler kinds `respond` and `echo` (`proxy` is in gateway/proxy/).
#include "gateway/handlers/respond_handler.hpp"
#include "sluice/extension/handler_kind.hpp"

namespace sluice::gateway {
namespace {

using extension::HandlerRegistrar;
using extension::HandlerSpec;

const HandlerRegistrar respond_kind("respond", [](Settings& s, const HandlerSpec&) {
  auto status = static_cast<int>(s.integer("status", 200, 100, 599));
  return std::make_shared<RespondHandler>(status, s.string_map("headers"), s.string("body"));
});

const HandlerRegistrar echo_kind("echo", [](Settings&, const HandlerSpec&) {
  return std::make_shared<EchoHandler>();
});
}  // namespace
}  // namespace sluice::gateway
