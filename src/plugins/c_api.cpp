#include "plugins/c_api.hpp"

#include <string_view>

namespace sluice::plugins {

namespace {
Exchange& from_c(sluice_exchange* ex) {
  return *reinterpret_cast<Exchange*>(ex);
}
ConfigView& from_c(sluice_config* cfg) {
  return *reinterpret_cast<ConfigView*>(cfg);
}
std::string_view sv(sluice_str s) {
  return s.data == nullptr ? std::string_view{} : std::string_view(s.data, s.size);
}
sluice_str cs(std::string_view s) {
  return {s.data(), s.size()};
}

const sluice_exchange_api kExchangeApi = {
    sizeof(sluice_exchange_api),
    [](sluice_exchange* ex) { return cs(from_c(ex).request().method()); },
    [](sluice_exchange* ex) { return cs(from_c(ex).request().path()); },
    [](sluice_exchange* ex, sluice_str name) { return cs(from_c(ex).request().header(sv(name))); },
    [](sluice_exchange* ex, sluice_str name, sluice_str value) {
      from_c(ex).request().set_header(sv(name), sv(value));
    },
    [](sluice_exchange* ex) { return cs(from_c(ex).request().body()); },
    [](sluice_exchange* ex) { return from_c(ex).response().status(); },
    [](sluice_exchange* ex, int status) { from_c(ex).response().set_status(status); },
    [](sluice_exchange* ex, sluice_str name) { return cs(from_c(ex).response().header(sv(name))); },
    [](sluice_exchange* ex, sluice_str name, sluice_str value) {
      from_c(ex).response().set_header(sv(name), sv(value));
    },
    [](sluice_exchange* ex, sluice_str name, sluice_str value) {
      from_c(ex).response().add_header(sv(name), sv(value));
    },
    [](sluice_exchange* ex) { return cs(from_c(ex).response().body()); },
    [](sluice_exchange* ex, sluice_str body, sluice_str content_type) {
      from_c(ex).response().set_body(std::string(sv(body)), sv(content_type));
    },
    [](sluice_exchange* ex, int status, sluice_str content_type, sluice_str body) {
      from_c(ex).answer(status, sv(content_type), std::string(sv(body)));
      return static_cast<int>(SLUICE_RESPOND);
    },
    [](sluice_exchange* ex, int status, sluice_str error, sluice_str message) {
      from_c(ex).answer_error(status, sv(error), sv(message));
      return static_cast<int>(SLUICE_RESPOND);
    },
    [](sluice_exchange* ex) { return cs(from_c(ex).context().request_id()); },
    [](sluice_exchange* ex) { return cs(from_c(ex).context().client_ip()); },
};

const sluice_config_api kConfigApi = {
    sizeof(sluice_config_api),
    [](sluice_config* cfg, const char* key, sluice_str* out) {
      auto& view = from_c(cfg);
      auto value = view.settings->optional_string(key);
      if (!value) return 0;
      const std::string& kept = view.strings.emplace_back(std::move(*value));
      *out = cs(kept);
      return 1;
    },
    [](sluice_config* cfg, const char* key, int64_t fallback) {
      return static_cast<int64_t>(from_c(cfg).settings->integer(key, fallback));
    },
    [](sluice_config* cfg, const char* key, const char* message) {
      auto& view = from_c(cfg);
      ++view.errors;
      view.settings->error(key == nullptr ? "" : key, message == nullptr ? "invalid" : message);
    },
};
}  // namespace

const sluice_exchange_api& exchange_api() {
  return kExchangeApi;
}
const sluice_config_api& config_api() {
  return kConfigApi;
}

}  // namespace sluice::plugins
