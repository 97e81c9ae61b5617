// The admin API's JSON answers, one helper for every endpoint: pretty-printed with a final
// newline, and invalid UTF-8 (a path or header a client sent) replaced rather than thrown.
//
//   return answer_json(ex, 200, {{"status", "alive"}});
#pragma once

#include <nlohmann/json.hpp>

#include "sluice/exchange.hpp"

namespace sluice::extension {

inline Decision answer_json(Exchange& ex, int status, const nlohmann::json& body) {
  return ex.answer(status, "application/json",
                   body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace sluice::extension
