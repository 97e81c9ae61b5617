#include "sluice/extension/json_answer.hpp"

#include <nlohmann/json.hpp>

namespace sluice::extension {

std::string json_text(const nlohmann::json& body, JsonLayout layout) {
  return body.dump(layout == JsonLayout::kIndented ? 2 : -1, ' ', false,
                   nlohmann::json::error_handler_t::replace);
}

Decision answer_json(Exchange& ex, int status, const nlohmann::json& body, JsonLayout layout) {
  return ex.answer(status, "application/json", json_text(body, layout) + "\n");
}

}  // namespace sluice::extension
