// The host side of the plugin C ABI: the function tables handed to plugins, backed by
// sluice::Exchange and sluice::Settings.
//
//   const sluice_exchange_api& api = exchange_api();
//   int r = type->pre_handle(instance, to_c(ex));
#pragma once

#include <deque>
#include <string>

#include "sluice/exchange.hpp"
#include "sluice/plugin_abi.h"
#include "sluice/settings.hpp"

namespace sluice::plugins {

const sluice_exchange_api& exchange_api();
const sluice_config_api& config_api();

inline sluice_exchange* to_c(Exchange& ex) {
  return reinterpret_cast<sluice_exchange*>(&ex);
}

// The config of one create() call: the settings, and the strings handed out to the plugin
// (valid until create() returns).
struct ConfigView {
  Settings* settings;
  std::deque<std::string> strings;
  int errors = 0;
};
inline sluice_config* to_c(ConfigView& view) {
  return reinterpret_cast<sluice_config*>(&view);
}

}  // namespace sluice::plugins
