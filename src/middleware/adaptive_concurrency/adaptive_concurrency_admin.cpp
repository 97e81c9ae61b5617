// Admin API of adaptive concurrency:
//   GET /adaptive_concurrency   every adaptive_concurrency middleware: limit, in flight, gradient,
//                               min and sample RTT, whether the min RTT is being measured
#include "middleware/adaptive_concurrency/adaptive_concurrency_middleware.hpp"
#include "sluice/extension/admin_endpoint.hpp"
#include "sluice/extension/json_answer.hpp"

namespace sluice::middleware {
namespace {

double millis(Nanos d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

bool handle(Exchange& ex, extension::AdminView& gw) {
  if (ex.request().path() != "/adaptive_concurrency") return false;
  if (ex.request().method() != "GET" && ex.request().method() != "HEAD") {
    ex.answer_error(405, "method_not_allowed", "GET /adaptive_concurrency");
    return true;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : gw.routes()) {
    const auto snapshot = r.chain->current();  // held: an edit may publish a new one meanwhile
    for (const auto& e : snapshot->entries()) {
      auto* m = dynamic_cast<AdaptiveConcurrencyMiddleware*>(e.middleware.get());
      if (m == nullptr) continue;
      const auto s = m->controller().snapshot();
      list.push_back({{"route", r.name},
                      {"middleware", std::string(m->name())},
                      {"limit", s.limit},
                      {"in_flight", s.in_flight},
                      {"gradient", s.gradient},
                      {"min_rtt_ms", millis(s.min_rtt)},
                      {"sample_rtt_ms", millis(s.sample_rtt)},
                      {"measuring_min_rtt", s.measuring_min_rtt},
                      {"rejected", s.rejected}});
    }
  }
  extension::answer_json(ex, 200, {{"middlewares", list}});
  return true;
}

// Memory only (no descriptor of the workers): served on the admin thread itself.
const extension::AdminEndpointRegistrar endpoint({"/adaptive_concurrency", handle,
                                                  extension::AdminEndpoint::Thread::kAdminThread});

}  // namespace
}  // namespace sluice::middleware
