// The one JSON answer helper: indented (admin API) or compact (errors, the echo handler), and
// invalid UTF-8 replaced by U+FFFD instead of thrown (nlohmann's default dump() throws).
#include "sluice/extension/json_answer.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace sluice::extension {
namespace {

TEST(JsonAnswer, LayoutsAreIndentedOrCompact) {
  const nlohmann::json body = {{"a", 1}, {"b", {true}}};
  EXPECT_EQ(json_text(body), "{\n  \"a\": 1,\n  \"b\": [\n    true\n  ]\n}");
  EXPECT_EQ(json_text(body, JsonLayout::kCompact), R"({"a":1,"b":[true]})");
}

TEST(JsonAnswer, InvalidUtf8IsReplacedNotThrown) {
  const nlohmann::json body = {{"path", std::string("/faults/bad\xff\xfe-x")}};
  EXPECT_THROW((void)body.dump(), nlohmann::json::type_error) << "what the helper must avoid";
  std::string text;
  ASSERT_NO_THROW(text = json_text(body, JsonLayout::kCompact));
  EXPECT_EQ(text, "{\"path\":\"/faults/bad\xEF\xBF\xBD\xEF\xBF\xBD-x\"}");
  EXPECT_EQ(nlohmann::json::parse(text)["path"], "/faults/bad\xEF\xBF\xBD\xEF\xBF\xBD-x");
  ASSERT_NO_THROW(text = json_text(body));
  EXPECT_NE(text.find("bad\xEF\xBF\xBD\xEF\xBF\xBD-x"), std::string::npos);
}

}  // namespace
}  // namespace sluice::extension
