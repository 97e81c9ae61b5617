// The fault switchboard on the admin listener, without a reload:
//   GET  /faults                              every fault: switch, percentage, counters
//   GET  /faults/{name}
//   POST /faults/{name}/enable | /disable
//   POST /faults/{name}/percentage?value=25   (or a JSON body {"value": 25})
// The `chaos` config section publishes the board in each loaded config's extras, so the admin
// thread reaches it through the immutable published config rather than the shared slots that
// a concurrent reload may be writing.
#include <charconv>
#include <nlohmann/json.hpp>

#include "middleware/fault/fault_board.hpp"
#include "sluice/extension/admin_endpoint.hpp"
#include "sluice/extension/config_section.hpp"
#include "sluice/extension/json_answer.hpp"

namespace sluice::middleware {
namespace {
using json = nlohmann::json;

struct FaultBoardRef {
  fault::FaultBoard* board;
};

const extension::ConfigSectionRegistrar section("chaos", [](Settings&, ConfigBuild& config,
                                                            GatewayServices& services) {
  auto& upstreams = services.shared.get_or_emplace<upstream::UpstreamFaults>();
  auto& board = services.shared.get_or_emplace<fault::FaultBoard>(&upstreams, services.metrics);
  config.extras->emplace<FaultBoardRef>(FaultBoardRef{&board});
});

std::string_view mode_name(upstream::UpstreamFault::Kind k) {
  switch (k) {
    case upstream::UpstreamFault::Kind::kConnectRefused:
      return "connect_refused";
    case upstream::UpstreamFault::Kind::kBlackHole:
      return "black_hole";
    case upstream::UpstreamFault::Kind::kStatus:
      return "status";
  }
  return "unknown";
}

json to_json(const fault::FaultView& v) {
  json j = {{"name", v.name},
            {"kind", v.kind},
            {"enabled", v.enabled},
            {"percentage", v.percentage},
            {"configured", v.configured},
            {"matched", v.matched},
            {"injected", v.injected},
            {"skipped", v.skipped},
            {"seed", v.seed}};
  if (!v.cluster.empty()) j["cluster"] = v.cluster;
  return j;
}

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    auto slash = path.find('/');
    auto part = path.substr(0, slash);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

// ?value=N, or a JSON body {"value": N} / {"percentage": N}.
std::optional<double> percentage_of(const Exchange& ex) {
  std::string_view q = ex.request().query();
  while (!q.empty()) {
    auto amp = q.find('&');
    auto kv = q.substr(0, amp);
    if (kv.starts_with("value=")) {
      kv.remove_prefix(6);
      double v = 0;
      auto [ptr, ec] = std::from_chars(kv.data(), kv.data() + kv.size(), v);
      if (ec == std::errc() && ptr == kv.data() + kv.size()) return v;
      return std::nullopt;
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  auto body = json::parse(ex.request().body(), nullptr, false);
  if (body.is_object()) {
    for (const char* key : {"value", "percentage"})
      if (body.contains(key) && body[key].is_number()) return body[key].get<double>();
  }
  return std::nullopt;
}

void list(Exchange& ex, fault::FaultBoard& board) {
  json faults = json::array();
  for (const auto& v : board.list())
    faults.push_back(to_json(v));
  json upstreams = json::object();
  if (board.upstreams() != nullptr) {
    for (const auto& [cluster, f] : board.upstreams()->active()) {
      upstreams[cluster] = {
          {"mode", mode_name(f.kind)}, {"percentage", f.percentage}, {"fault", f.fault}};
      if (f.kind == upstream::UpstreamFault::Kind::kStatus) upstreams[cluster]["status"] = f.status;
    }
  }
  extension::answer_json(ex, 200, {{"faults", faults}, {"unavailable_upstreams", upstreams}});
}

bool handle(Exchange& ex, extension::AdminView& gw) {
  auto parts = split(ex.request().path());
  if (parts.empty() || parts[0] != "faults") return false;  // e.g. "/faultsx"
  const auto config = gw.config();  // held: the ref lives in this config's extras
  const auto* ref = config->extras->get<FaultBoardRef>();
  if (ref == nullptr) return false;
  fault::FaultBoard& board = *ref->board;
  const std::string_view method = ex.request().method();
  const bool get = method == "GET" || method == "HEAD";
  if (parts.size() == 1 && get) {
    list(ex, board);
    return true;
  }
  if (parts.size() < 2 || parts.size() > 3) return false;
  const std::string name(parts[1]);
  if (!board.view(name)) {
    ex.answer_error(404, "not_found", "no fault named \"" + name + "\" (GET /faults lists them)");
    return true;
  }
  if (parts.size() == 2) {
    if (!get) {
      ex.answer_error(405, "method_not_allowed", "GET /faults/{name}");
      return true;
    }
    extension::answer_json(ex, 200, to_json(*board.view(name)));
    return true;
  }
  if (method != "POST") {
    ex.answer_error(405, "method_not_allowed", "POST /faults/{name}/enable|disable|percentage");
    return true;
  }
  const std::string_view action = parts[2];
  if (action == "enable" || action == "disable") {
    board.set_enabled(name, action == "enable", "admin API");
  } else if (action == "percentage") {
    auto pct = percentage_of(ex);
    if (!pct || *pct < 0 || *pct > 100) {
      ex.answer_error(400, "bad_request",
                      "give the percentage (0..100) as ?value=N or a JSON body {\"value\": N}");
      return true;
    }
    board.set_percentage(name, *pct, "admin API");
  } else {
    ex.answer_error(404, "not_found", "expected /enable, /disable or /percentage");
    return true;
  }
  extension::answer_json(ex, 200, to_json(*board.view(name)));
  return true;
}

// Memory only (no descriptor of the workers): served on the admin thread itself.
const extension::AdminEndpointRegistrar endpoint({"/faults", handle,
                                                  extension::AdminEndpoint::Thread::kAdminThread});

}  // namespace
}  // namespace sluice::middleware
