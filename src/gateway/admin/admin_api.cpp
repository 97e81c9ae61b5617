#include "gateway/admin/admin_api.hpp"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>

#include "gateway/gateway.hpp"
#include "sluice/extension/json_answer.hpp"

namespace sluice::gateway {

using extension::answer_json;

namespace {
using json = nlohmann::json;

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/')
      ++i;
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return parts;
}
// Contributed endpoints (extension/admin_endpoint.hpp), matched by path prefix. Those that may
// act on the workers' descriptors run on the main thread (this thread has a table of its own).
bool contributed(Exchange& ex, extension::AdminView& host, Gateway& gateway) {
  const std::string_view path = ex.request().path();
  for (const auto& e : extension::admin_endpoints()) {
    if (!path.starts_with(e.prefix)) continue;
    if (e.thread == extension::AdminEndpoint::Thread::kAdminThread) {
      if (e.handle(ex, host)) return true;
      continue;
    }
    bool handled = false;
    std::exception_ptr failed;  // thrown here, where dispatch() answers it with a 500
    const bool ran = gateway.run_for_admin([&] {
      try {
        handled = e.handle(ex, host);
      } catch (...) {
        failed = std::current_exception();
      }
    });
    if (!ran) {
      ex.answer_error(503, "unavailable", "the gateway is stopping");
      return true;
    }
    if (failed) std::rethrow_exception(failed);
    if (handled) return true;
  }
  return false;
}
}  // namespace

GatewayServices& AdminApi::services() {
  return gateway_.services();
}

std::shared_ptr<const ConfigBuild> AdminApi::config() const {
  return gateway_.config();
}

std::vector<extension::RouteView> AdminApi::routes() const {
  std::vector<extension::RouteView> out;
  const auto config = gateway_.config();
  for (const auto& r : config->routes->routes)
    out.push_back({r->info.name, r->chain});
  return out;
}

void AdminApi::dispatch(Exchange& ex, server::DispatchState*, std::function<void()> done) {
  ex.context().set_new_request_id();
  try {
    route(ex);
  } catch (const std::exception& e) {
    ex.answer_error(500, "internal_error", "admin request failed");
  }
  done();
}

namespace {
// Compares in time that depends on the lengths only, so response timing does not reveal how
// much of a guessed token was right.
bool same_secret(std::string_view given, std::string_view expected) {
  if (given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}
}  // namespace

bool AdminApi::authorized(Exchange& ex) {
  // Held for the check: a reload on the main thread may replace the config meanwhile and free
  // the previous one (a reference into a temporary's config read freed memory; ThreadSanitizer).
  const auto config = gateway_.config();
  const auto& settings = config->settings;
  const auto& token = settings.admin_token;
  if (token.empty()) return true;
  const std::string_view path = ex.request().path();
  for (const auto& open : settings.admin_open_paths) {
    if (path == open) return true;
  }
  std::string_view given = ex.request().header("Authorization");
  if (given.starts_with("Bearer ") && same_secret(given.substr(7), token)) return true;
  ex.answer_error(401, "unauthorized", "this endpoint needs Authorization: Bearer <admin token>");
  ex.response().set_header("WWW-Authenticate", "Bearer");
  return false;
}

void AdminApi::route(Exchange& ex) {
  const std::string_view path = ex.request().path();
  const std::string_view method = ex.request().method();
  const bool get = method == "GET" || method == "HEAD";
  const bool post = method == "POST";
  auto parts = split_path(path);
  // With a token configured every endpoint needs it, reads too: /config, /routes and /metrics
  // describe the deployment to whoever can reach the listener.
  if (!authorized(ex)) return;

  if (path == "/healthz" && get) {
    answer_json(ex, 200, {{"status", "alive"}});
  } else if (path == "/readyz" && get) {
    const bool ready = gateway_.ready();
    answer_json(ex, ready ? 200 : 503,
                {{"status", ready ? "ready" : "not_ready"}, {"draining", gateway_.draining()}});
  } else if (path == "/metrics" && get) {
    prometheus::TextSerializer serializer;
    ex.answer(200, "text/plain; version=0.0.4; charset=utf-8",
              serializer.Serialize(gateway_.services().metrics->Collect()));
  } else if (path == "/config" && get) {
    auto config = gateway_.config();
    answer_json(ex, 200, {{"source", config->source}, {"config", config->effective}});
  } else if (path == "/routes" && get) {
    routes(ex);
  } else if (path == "/reload" && post) {
    // Not here: what a reload builds (upstream pools, Redis clients, queues, their threads)
    // must be made in the workers' file table, and this thread has its own.
    auto result = gateway_.reload_for_admin();
    answer_json(ex, result.ok ? 200 : 400,
                {{"result", result.ok ? "ok" : "error"},
                 {"errors", result.errors},
                 {"restart_required", result.restart_required}});
  } else if (parts.size() == 5 && parts[0] == "routes" && parts[2] == "middlewares" && post) {
    edit_middleware(ex, parts);
  } else if (contributed(ex, *this, gateway_)) {
    return;
  } else if (path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/config" ||
             path == "/routes" || path == "/reload" ||
             (parts.size() == 5 && parts[0] == "routes")) {
    ex.answer_error(405, "method_not_allowed", "method not allowed on this endpoint");
  } else {
    ex.answer_error(404, "not_found", "no such admin endpoint");
  }
}

void AdminApi::routes(Exchange& ex) {
  auto config = gateway_.config();
  json out = json::array();
  for (const auto& r : config->routes->routes) {
    json chain = json::array();
    auto snapshot = r->chain->current();
    for (const auto& e : snapshot->entries()) {
      chain.push_back(
          {{"name", e.middleware->name()}, {"type", e.middleware->type()}, {"enabled", e.enabled}});
    }
    json match = {{"prefix", r->match.prefix},
                  {"exact", r->match.exact},
                  {"methods", r->match.methods},
                  {"host", r->match.host}};
    out.push_back({{"name", r->info.name},
                   {"match", match},
                   {"middlewares", chain},
                   {"handler", r->handler ? std::string(r->handler->kind()) : ""},
                   {"chain_version", snapshot->version()}});
  }
  answer_json(ex, 200, {{"routes", out}});
}

// POST /routes/{route}/middlewares/{name}/enable|disable — a chain swap, no reload.
void AdminApi::edit_middleware(Exchange& ex, const std::vector<std::string>& parts) {
  auto config = gateway_.config();
  const Route* r = config->routes->find(parts[1]);
  if (r == nullptr) {
    ex.answer_error(404, "not_found", "no route named \"" + parts[1] + "\"");
    return;
  }
  EditResult result;
  if (parts[4] == "enable")
    result = r->chain->enable(parts[3]);
  else if (parts[4] == "disable")
    result = r->chain->disable(parts[3]);
  else {
    ex.answer_error(404, "not_found", "expected .../enable or .../disable");
    return;
  }
  if (!result.ok()) {
    ex.answer_error(404, "not_found", result.error);
    return;
  }
  answer_json(ex, 200,
              {{"route", parts[1]},
               {"middleware", parts[3]},
               {"enabled", parts[4] == "enable"},
               {"chain_version", r->chain->current()->version()}});
}

}  // namespace sluice::gateway
