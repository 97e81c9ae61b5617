// JSON answers, one helper for every place sluice answers with JSON: admin endpoints, the
// `respond` handler's echo, `Exchange::answer_error`. Invalid UTF-8 (a path, a header or a name a
// client or a config sent) is replaced by U+FFFD instead of thrown, so no answer fails on it.
//
//   return answer_json(ex, 200, {{"status", "alive"}});        // indented, final newline
//   std::string text = json_text(body, JsonLayout::kCompact);  // one line, no newline
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sluice/exchange.hpp"

namespace sluice::extension {

enum class JsonLayout {
  kIndented,  // two spaces per level: what the admin API answers, for people reading it
  kCompact,   // one line: error bodies and the echo handler, for programs
};

// The text of `body`; invalid UTF-8 in its strings replaced by U+FFFD, never thrown.
std::string json_text(const nlohmann::json& body, JsonLayout layout = JsonLayout::kIndented);

// Answers `status` with `body` as application/json, its text followed by a newline.
Decision answer_json(Exchange& ex, int status, const nlohmann::json& body,
                     JsonLayout layout = JsonLayout::kIndented);

}  // namespace sluice::extension
