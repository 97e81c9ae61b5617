#include "middleware/fault/fault_board.hpp"
#include "middleware/fault/fault_config.hpp"
#include "middleware/fault/fault_middleware.hpp"
#include "sluice/registry.hpp"
#include "sluice/services.hpp"

namespace sluice::middleware {
namespace {

fault::FaultBoard& board_of(GatewayServices* services) {
  if (services == nullptr) {  // a chain built outside the gateway: a board of its own
    static upstream::UpstreamFaults upstreams;
    static fault::FaultBoard board(&upstreams, nullptr);
    return board;
  }
  auto& upstreams = services->shared.get_or_emplace<upstream::UpstreamFaults>();
  return services->shared.get_or_emplace<fault::FaultBoard>(&upstreams, services->metrics);
}

const MiddlewareRegistrar registrar("fault",
                                    [](const MiddlewareSpec& spec,
                                       Settings& s) -> std::shared_ptr<Middleware> {
                                      auto config = read_fault_config(s);
                                      // Nothing is declared on the shared board for a config that
                                      // is already refused.
                                      if (!config || !s.ok()) return nullptr;
                                      return std::make_shared<FaultMiddleware>(
                                          spec.name, std::move(*config), board_of(spec.services));
                                    });

}  // namespace
}  // namespace sluice::middleware
