#include "gateway/config.hpp"

#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "core/config_errors.hpp"
#include "gateway/admin/redact.hpp"
#include "gateway/listener_tls.hpp"
#include "sluice/extension/config_section.hpp"
#include "sluice/extension/handler_kind.hpp"
#include "sluice/registry.hpp"

namespace sluice::gateway {

std::string ListenAddress::text() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

namespace {

std::optional<ListenAddress> parse_listen(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) port = -1;
  } catch (...) {
  }
  if (port < 0 || port > 65535) return std::nullopt;
  return ListenAddress{host, static_cast<unsigned short>(port)};
}

nlohmann::json to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& kv : n)
        j[kv.first.as<std::string>("")] = to_json(kv.second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& item : n)
        j.push_back(to_json(item));
      return j;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() != "!") {  // plain (unquoted) scalars may be numbers or booleans
        if (s == "true" || s == "false") return s == "true";
        char* end = nullptr;
        long long i = std::strtoll(s.c_str(), &end, 10);
        if (!s.empty() && *end == '\0') return i;
        double d = std::strtod(s.c_str(), &end);
        if (!s.empty() && *end == '\0') return d;
      }
      return s;
    }
    default:
      return nullptr;
  }
}

class Loader {
 public:
  Loader(std::string source, const LoadedConfig* previous, GatewayServices& services)
      : errors_(std::move(source)), previous_(previous), services_(services) {}

  LoadOutcome load(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      errors_.add(e.mark, "", e.msg);
      return fail();
    }
    if (!root.IsMap()) {
      // An empty file has no node and so no mark: the error points at its start, 1:1 (the
      // config fuzz target's first finding: an error without a position).
      errors_.add(root.Mark().is_null() ? YAML::Mark() : root.Mark(), "",
                  "the config must be a map (listen, admin, routes, ...)");
      return fail();
    }
    auto config = std::make_shared<LoadedConfig>();
    config->source = errors_.file();
    config->effective = to_json(root);
    redact_secrets(config->effective);  // GET /config shows it: secrets never reach it
    Settings top = errors_.settings(root, "");
    read_settings(top, root, config->settings);
    // What handlers and middlewares of this load may take from it (the proxy's X-Forwarded-For).
    config->extras->emplace<net::RealIpOfConfig>(net::RealIpOfConfig{config->settings.real_ip});
    extension::for_each_config_section(
        [&](const std::string& key, const extension::ConfigSection& section) {
          Settings s = top.child(key);
          section(s, *config, services_);
        });
    config->routes = std::make_shared<RouteTable>();
    read_routes(top, *config);
    errors_.finish();
    if (!errors_.empty()) return fail();
    return {config, {}};
  }

  LoadOutcome fail() { return {nullptr, errors_.all()}; }

 private:
  ListenAddress listen_at(const Settings& s, std::string_view key, ListenAddress fallback) {
    auto text = s.optional_string(key);
    if (!text) return fallback;
    auto a = parse_listen(*text);
    if (!a) {
      s.error(key, "must be host:port (e.g. 127.0.0.1:8080), got \"" + *text + "\"");
      return fallback;
    }
    return *a;
  }

  // `listen:` is "host:port", or a list whose items are "host:port" or maps with options.
  void read_listeners(const Settings& top, const YAML::Node& root, GatewaySettings& out) {
    if (!top.has("listen")) return;
    top.mark_read("listen");  // read from the YAML below: items are strings or maps
    const YAML::Node node = root["listen"];
    auto plain = [&](const YAML::Node& n, const std::string& path) {
      auto a = parse_listen(n.Scalar());
      if (!a) {
        errors_.add(n, path, "must be host:port (e.g. 127.0.0.1:8080), got \"" + n.Scalar() + "\"");
        return;
      }
      ListenerSettings l;
      static_cast<ListenAddress&>(l) = *a;
      out.listeners.push_back(std::move(l));
    };
    if (node.IsScalar()) return plain(node, "listen");
    if (!node.IsSequence()) {
      errors_.add(node, "listen", "must be host:port or a list of them (or of listener maps)");
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string path = "listen[" + std::to_string(i) + "]";
      if (node[i].IsScalar()) {
        plain(node[i], path);
        continue;
      }
      Settings s = errors_.settings(node[i], path);
      ListenerSettings l;
      const auto text = s.optional_string("address");
      auto a = text ? parse_listen(*text) : std::nullopt;
      if (!text) s.error("", "a listener needs an address (host:port)");
      if (text && !a)
        s.error("address", "must be host:port (e.g. 127.0.0.1:8080), got \"" + *text + "\"");
      if (!a) continue;
      static_cast<ListenAddress&>(l) = *a;
      l.proxy_protocol = s.boolean("proxy_protocol", false);
      if (s.has("tls")) l.tls = read_listener_tls(s.child("tls"));
      out.listeners.push_back(std::move(l));
    }
  }

  void read_settings(const Settings& top, const YAML::Node& root, GatewaySettings& out) {
    read_listeners(top, root, out);
    if (out.listeners.empty() && top.ok()) out.listeners.push_back({{"127.0.0.1", 8080}});
    const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    out.workers = static_cast<int>(top.integer("workers", cpus, 1, 256));
    out.worker_cpu_affinity = top.choice("worker_cpu_affinity", {"off", "auto"}, "off") == "auto";
    // One worker is never pinned (gateway.cpp); said only when workers: 1 is written, since the
    // default (one per CPU) is 1 on a one-CPU machine, where the same file must still load.
    if (out.worker_cpu_affinity && out.workers == 1 && top.has("workers"))
      top.error("worker_cpu_affinity", "has no effect with workers: 1 (one worker is not pinned)");
    out.drain_timeout = top.millis("drain_timeout_ms", out.drain_timeout);
    out.log_level = top.choice("log_level", {"trace", "debug", "info", "warn", "error"}, "info");
    out.real_ip = net::read_real_ip(top.child("real_ip"));

    Settings limits = top.child("limits");
    auto& l = out.limits;
    l.max_header_bytes = static_cast<std::size_t>(limits.integer(
        "max_header_bytes", static_cast<std::int64_t>(l.max_header_bytes), 1024, 1 << 20));
    l.max_headers = static_cast<std::size_t>(
        limits.integer("max_headers", static_cast<std::int64_t>(l.max_headers), 1, 10'000));
    l.max_body_bytes = static_cast<std::size_t>(limits.integer(
        "max_body_bytes", static_cast<std::int64_t>(l.max_body_bytes), 0, std::int64_t{1} << 40));
    l.buffer_body_bytes = static_cast<std::size_t>(
        limits.integer("buffer_body_bytes", static_cast<std::int64_t>(l.buffer_body_bytes), 1024,
                       std::int64_t{1} << 30));
    l.header_timeout = limits.millis("header_timeout_ms", l.header_timeout);
    l.body_timeout = limits.millis("body_timeout_ms", l.body_timeout);
    l.idle_timeout = limits.millis("idle_timeout_ms", l.idle_timeout);
    l.linger_timeout = limits.millis("linger_timeout_ms", l.linger_timeout);
    l.max_connections = static_cast<std::size_t>(limits.integer(
        "max_connections", static_cast<std::int64_t>(l.max_connections), 1, 10'000'000));

    Settings admin = top.child("admin");
    out.admin_enabled = admin.boolean("enabled", true);
    out.admin = listen_at(admin, "listen", out.admin);
    out.admin_token = admin.string("token");
    // Paths answered without the token when one is set: only the read-only probes, for load
    // balancers and orchestrators that cannot send a bearer token.
    out.admin_open_paths = admin.strings("open_paths");
    for (const auto& p : out.admin_open_paths) {
      if (p != "/healthz" && p != "/readyz" && p != "/metrics")
        admin.error("open_paths",
                    "only /healthz, /readyz and /metrics may be opened, got \"" + p + "\"");
    }
    // token and open_paths are not checked against enabled: false: a reload cannot stop a
    // running admin listener, which then keeps serving with the new config's token.
    if (!out.admin_enabled && admin.has("listen"))
      admin.error("listen", "has no effect with enabled: false (no admin listener)");
    if (out.admin_token.empty() && admin.has("open_paths"))
      admin.error("open_paths", "has no effect without a token (every admin path is open)");
    if (out.admin_enabled && out.admin_token.empty() && out.admin.host != "127.0.0.1" &&
        out.admin.host != "::1" && out.admin.host != "localhost") {
      admin.error("listen",
                  "the admin listener is not on loopback: set admin.token (a bearer token for "
                  "its endpoints)");
    }
  }

  void read_routes(const Settings& top, LoadedConfig& config) {
    auto routes = top.children("routes");
    if (routes.empty()) top.error("routes", "at least one route is required");
    std::vector<std::string> names;
    for (std::size_t i = 0; i < routes.size(); ++i) {
      Settings& r = routes[i];
      auto route = std::make_shared<Route>();
      route->info.name = r.string("name", "route" + std::to_string(i));
      if (std::find(names.begin(), names.end(), route->info.name) != names.end()) {
        r.error("name", "duplicate route name \"" + route->info.name + "\"");
      }
      names.push_back(route->info.name);
      read_match(r.child("match"), route->match);
      read_chain(r, *route, config);
      read_handler(r, *route, config);
      config.routes->routes.push_back(route);
    }
  }

  void read_match(const Settings& m, RouteMatch& match) {
    match.prefix = m.string("prefix");
    match.exact = m.string("exact");
    match.methods = m.strings("methods");
    match.host = m.string("host");
    if (!match.prefix.empty() && !match.exact.empty())
      m.error("exact", "use either prefix or exact, not both");
    if (match.prefix.empty() && match.exact.empty()) match.prefix = "/";
    for (const auto* p : {&match.prefix, &match.exact}) {
      if (!p->empty() && (*p)[0] != '/') m.error("", "paths must start with '/'");
    }
  }

  void read_chain(const Settings& r, Route& route, LoadedConfig& config) {
    route.chain = std::make_shared<Chain>(route.info.name, config.observers);
    std::vector<ChainEntry> entries;
    auto items = r.children("middlewares");
    auto& registry = MiddlewareRegistry::global();
    for (auto& item : items) {
      MiddlewareSpec spec;
      spec.type = item.string("type");
      spec.name = item.string("name", spec.type);
      spec.route = route.info.name;
      spec.services = &services_;
      spec.build = &config;
      bool enabled = item.boolean("enabled", true);
      if (spec.type.empty()) {
        item.error("type", "missing middleware type");
        continue;
      }
      const MiddlewareFactory* factory = registry.find(spec.type);
      if (factory == nullptr) {
        item.error("type", "unknown middleware type \"" + spec.type + "\"" +
                               did_you_mean(spec.type, registry.types()));
        continue;
      }
      for (const auto& e : entries) {
        if (e.middleware->name() == spec.name)
          item.error("name", "duplicate middleware name \"" + spec.name +
                                 "\" in this chain (give one of them a name:)");
      }
      const std::string key = route.info.name + "/" + spec.name;
      const std::string identity = identity_of(item);
      std::shared_ptr<Middleware> m = reuse(key, identity);
      if (m) {
        item.accept_all();  // the same settings were validated by the previous load
        // An item the reload did not change keeps what the admin API made of it (enabled or
        // disabled), as faults keep their run-time switches; a changed item takes the file's.
        if (auto previous = previous_enabled(route.info.name, spec.name)) enabled = *previous;
      } else {
        const std::size_t before = errors_.count();
        m = (*factory)(spec, item);
        if (!m) {
          if (errors_.count() == before) item.error("", "could not be built");
          continue;
        }
        for (const auto& decorate : extension::middleware_decorators())
          m = decorate(std::move(m), item, spec);
      }
      // Only on a clean build so far: an item whose settings failed has said why already.
      if (errors_.empty()) {
        if (auto bound = m->bind_config(config); !bound.ok()) {
          item.error("", bound.error);
          continue;
        }
      }
      config.instances[key] = {identity, m};
      route.middlewares.push_back({spec.name, spec.type, identity});
      entries.push_back({m, enabled});
    }
    if (!errors_.empty()) return;
    auto result = route.chain->assign(std::move(entries));
    if (!result.ok()) r.error("middlewares", result.error);
  }

  // The middleware's whole YAML item, canonically dumped: equal text, equal settings.
  static std::string identity_of(const Settings& item) { return item.canonical(); }

  std::shared_ptr<Middleware> reuse(const std::string& key, const std::string& identity) {
    if (previous_ == nullptr || identity.empty()) return nullptr;
    auto it = previous_->instances.find(key);
    if (it == previous_->instances.end() || it->second.first != identity) return nullptr;
    return it->second.second;
  }

  std::optional<bool> previous_enabled(const std::string& route, const std::string& name) const {
    if (previous_ == nullptr || !previous_->routes) return std::nullopt;
    const Route* r = previous_->routes->find(route);
    if (r == nullptr || !r->chain) return std::nullopt;
    // Held while read: the admin thread may edit this chain meanwhile and free its snapshot.
    const auto snapshot = r->chain->current();
    for (const auto& e : snapshot->entries()) {
      if (e.middleware->name() == name) return e.enabled;
    }
    return std::nullopt;
  }

  void read_handler(const Settings& r, Route& route, const LoadedConfig& config) {
    Settings h = r.child("handler");
    std::string kind = h.string("type");
    if (kind.empty()) {
      h.error("type", "missing handler type (respond, echo, proxy)");
      return;
    }
    const extension::HandlerFactory* factory = extension::find_handler_kind(kind);
    if (factory == nullptr) {
      h.error("type", "unknown handler type \"" + kind + "\"" +
                          did_you_mean(kind, extension::handler_kinds()));
      return;
    }
    route.handler = (*factory)(h, extension::HandlerSpec{route.info.name, services_, config});
  }

  ConfigErrors errors_;
  const LoadedConfig* previous_;
  GatewayServices& services_;
};

}  // namespace

LoadOutcome load_config_text(const std::string& text, const std::string& source_name,
                             const LoadedConfig* previous, GatewayServices& services) {
  return Loader(source_name, previous, services).load(text);
}

LoadOutcome load_config_file(const std::string& path, const LoadedConfig* previous,
                             GatewayServices& services) {
  std::ifstream in(path);
  if (!in) return {nullptr, {path + ": cannot open the config file"}};
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_config_text(buffer.str(), path, previous, services);
}

std::vector<std::string> restart_required_changes(const GatewaySettings& before,
                                                  const GatewaySettings& after) {
  std::vector<std::string> changed;
  auto texts = [](const std::vector<ListenerSettings>& v) {
    std::vector<std::string> out;
    for (const auto& a : v)
      out.push_back(a.text() + (a.proxy_protocol ? " proxy_protocol" : "") + (a.tls ? " tls" : ""));
    return out;
  };
  if (texts(before.listeners) != texts(after.listeners)) changed.push_back("listen");
  if (before.workers != after.workers) changed.push_back("workers");
  if (before.worker_cpu_affinity != after.worker_cpu_affinity)
    changed.push_back("worker_cpu_affinity");
  if (before.admin.text() != after.admin.text() || before.admin_enabled != after.admin_enabled)
    changed.push_back("admin.listen");
  return changed;
}

}  // namespace sluice::gateway
